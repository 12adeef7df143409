-- Activity errors carry structured metadata: what kind of failure, whether a retry could help,
-- and a message for people.
local funcs = require("funcs")

local function main(order)
    local result, err = funcs.call("app:risky_activity", order)
    if err then
        print(err:kind())       -- error classification (e.g. "NOT_FOUND", "INTERNAL")
        print(err:retryable())  -- whether the error is retryable
        print(err:message())    -- human-readable error message
        return {failed = true, kind = err:kind(), retryable = err:retryable(), message = err:message()}
    end
    return {failed = false, result = result}
end

return { main = main }

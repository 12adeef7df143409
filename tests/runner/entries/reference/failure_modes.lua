-- Configure retries per call: this executor tries the activity once, whatever the entry allows,
-- so the workflow decides at once what to do about a failure.
local funcs = require("funcs")

local function main(input)
    local executor = funcs.new():with_options({
        ["activity.retry_policy"] = {
            maximum_attempts = 1,
        }
    })

    local result, err = executor:call("app:unreliable_activity", input)
    if err then
        local kind = err:kind()         -- "INTERNAL" for runtime errors
        local retryable = err:retryable()
        return {ok = false, kind = kind, retryable = retryable, message = err:message()}
    end
    return {ok = true, result = result}
end

return { main = main }

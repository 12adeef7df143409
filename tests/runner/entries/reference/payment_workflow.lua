-- Versioning: runs already in flight when "payment-v2" was deployed keep paying the old way
-- (version 1, replayed from their history), new runs pay the new way (version 2).
local funcs = require("funcs")
local time = require("time")
local workflow = require("workflow")

local function main(input)
    local result
    local version = workflow.version("payment-v2", 1, 2)

    if version == 1 then
        result = funcs.call("app:old_payment", input)
    else
        result = funcs.call("app:new_payment", input)
    end

    -- the receipt goes out once the payment has settled
    time.sleep(input.settle or "1s")
    return {version = version, payment = result}
end

return { main = main }

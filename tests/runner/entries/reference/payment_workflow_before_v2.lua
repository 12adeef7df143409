-- payment_workflow.lua as it was before the "payment-v2" change (no workflow.version call).
-- Not an entry of its own: tests/runner/temporal/test_reference_examples.py serves it as the previous
-- revision of app:payment_workflow, starts a run on it, then deploys the current revision.
local funcs = require("funcs")
local time = require("time")

local function main(input)
    local result = funcs.call("app:old_payment", input)
    time.sleep(input.settle or "1s")
    return {version = 0, payment = result}
end

return { main = main }

local funcs = require("funcs")
local time = require("time")

local function main(order)
    local start = time.now()
    local payment, err = funcs.call("app:charge_payment", {amount = order.total})
    if err then
        return {status = "failed", error = tostring(err), kind = err:kind()}
    end
    time.sleep("1s")
    local v = workflow.version("x", 1, 2)
    local f = funcs.async("app:charge_payment", {amount = 2})
    local r2 = f:result()
    print("done", payment.id)
    return {status = "completed", payment_id = payment.id, second = r2.amount, elapsed = time.now():sub(start):milliseconds(), v = v, id = uuid.v4(), info = workflow.info().workflow_type}
end

return { main = main }

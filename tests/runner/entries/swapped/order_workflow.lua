local funcs = require("funcs")
local time = require("time")

local function main(order)
    local start = time.now()
    -- swapped: the second call first
    local f = funcs.async("app:charge_payment", {amount = 2})
    local payment, err = funcs.call("app:charge_payment", {amount = order.total})
    if err then
        return {status = "failed", error = tostring(err), kind = err:kind()}
    end
    time.sleep("1s")
    local v = workflow.version("x", 1, 2)
    local r2 = f:result()
    return {status = "completed", payment_id = payment.id, second = r2.amount, v = v, id = uuid.v4(),
            elapsed = time.now():sub(start):milliseconds()}
end

return { main = main }

local funcs = require("funcs")
local time = require("time")

local function main(order)
    local payment, err = funcs.call("app:charge_payment", {amount = order.total})
    if err then
        return {status = "failed", error = tostring(err)}
    end
    time.sleep(order.ship_after or "1h")   -- a durable timer: survives worker restarts
    local shipment = funcs.call("app:ship_order", {order_id = order.id})
    return {status = "completed", payment_id = payment.id, tracking = shipment.tracking_number}
end

return { main = main }

-- The reference's basic order workflow: charge the customer, wait, ship the order.
-- A shipment that fails refunds the payment, so no customer pays for an order that never ships.
local funcs = require("funcs")
local time = require("time")

local function main(order)
    local payment, err = funcs.call("app:charge_payment", {
        amount = order.total,
        customer = order.customer_id
    })
    if err then
        return {status = "failed", error = tostring(err)}
    end

    -- A durable timer: a worker restart during the wait does not restart it. The reference
    -- waits an hour; `ship_after` lets tests and demos wait less.
    time.sleep(order.ship_after or "1h")

    local shipment, err = funcs.call("app:ship_order", {
        order_id = order.id,
        address = order.shipping_address
    })
    if err then
        funcs.call("app:refund_payment", payment.id)
        return {status = "failed", error = tostring(err)}
    end

    return {
        status = "completed",
        payment_id = payment.id,
        tracking = shipment.tracking_number
    }
end

return { main = main }

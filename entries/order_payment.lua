-- order_payment: an order that waits for the payment provider to confirm its payment (a webhook).
-- app:await_payment_confirmation hands its task token to the provider and stays pending, holding
-- no worker slot, until the provider's webhook finishes it from outside (docs/async-activities.md).
local funcs = require("funcs")

local function main(order)
    local confirmation, err = funcs.call("app:await_payment_confirmation",
                                         {order_id = order.id, amount = order.total})
    if err == nil then
        return {status = "paid", order_id = order.id, payment_reference = confirmation.reference}
    end
    if err:kind() == "DECLINED" then
        return {status = "payment_declined", order_id = order.id, reason = err:message()}
    end
    return {status = "payment_failed", order_id = order.id, error = err:kind()}
end

return { main = main }

-- Charge the customer, wait (a durable timer), then report the order shipped.
local function main(order)
    local payment, err = funcs.call("{{namespace}}:charge_payment", {amount = order.total})
    if err then
        return {status = "failed", error = tostring(err)}
    end
    time.sleep(order.ship_after or "1h")   -- survives worker restarts; no real time in tests
    return {status = "shipped", payment_id = payment.id, order_id = order.id}
end

return { main = main }

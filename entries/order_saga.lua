-- A saga: reserve stock, charge the customer, ship the order. When a step fails,
-- the steps that already succeeded are undone by their compensating activities,
-- most recent first, before the workflow reports which step failed.
--
-- Input: {items = {...}, payment = {amount = 42, customer = "c-1"}, shipping = {address = "..."}}
local funcs = require("funcs")

-- Declared before main: a local function is only visible after its declaration.
local function run_compensations(compensations)
    for _, comp in ipairs(compensations) do
        -- Best effort: a failed compensation is retried by its activity's retry policy.
        funcs.call(comp.action, comp.args)
    end
end

local function main(order)
    local compensations = {}

    local reservation, err = funcs.call("app:reserve_inventory", order.items)
    if err then
        return {status = "failed", step = "inventory", error = tostring(err)}
    end
    -- insert at position 1: compensations run in reverse order of the steps
    table.insert(compensations, 1, {
        action = "app:release_inventory",
        args = reservation.id
    })

    local payment, err = funcs.call("app:charge_payment", order.payment)
    if err then
        run_compensations(compensations)
        return {status = "failed", step = "payment", error = tostring(err)}
    end
    table.insert(compensations, 1, {
        action = "app:refund_payment",
        args = payment.id
    })

    -- ship_order fails with kind NOT_FOUND for an unknown address: watch the refund and release run.
    local shipment, err = funcs.call("app:ship_order", order.shipping)
    if err then
        run_compensations(compensations)
        return {status = "failed", step = "shipping", error = tostring(err)}
    end

    return {status = "completed", tracking = shipment.tracking_number}
end

return { main = main }

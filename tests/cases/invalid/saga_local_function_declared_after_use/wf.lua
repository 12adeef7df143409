local funcs = require("funcs")

local function main(order)
    local compensations = {}
    local reservation, err = funcs.call("app:act", order.items)
    if err then
        return {status = "failed"}
    end
    table.insert(compensations, 1, {action = "app:act", args = reservation.id})
    local payment, err2 = funcs.call("app:act", order.payment)
    if err2 then
        run_compensations(compensations)
        return {status = "failed"}
    end
    return {status = "completed", payment = payment}
end

local function run_compensations(compensations)
    for _, comp in ipairs(compensations) do
        funcs.call(comp.action, comp.args)
    end
end

return { main = main }

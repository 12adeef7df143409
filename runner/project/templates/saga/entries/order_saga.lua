-- Each step that succeeded pushes its undo; a failed step runs the undos, newest first.
local function main(order)
    local undo = {}
    local function compensate(err)
        for i = #undo, 1, -1 do
            funcs.call(undo[i].id, undo[i].args)
        end
        return {status = "compensated", error = tostring(err)}
    end

    local reservation, err = funcs.call("{{namespace}}:reserve_inventory", {sku = order.sku})
    if err then return compensate(err) end
    undo[#undo + 1] = {id = "{{namespace}}:release_inventory", args = {reservation = reservation.id}}

    local payment
    payment, err = funcs.call("{{namespace}}:charge_payment", {amount = order.total})
    if err then return compensate(err) end
    return {status = "completed", reservation = reservation.id, payment = payment.id}
end

return { main = main }

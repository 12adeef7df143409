-- A saga that can be cancelled while it waits: the blocking call reports CANCELED, and the
-- finished steps are undone (activities still run after cancellation) before the run ends.
local function run_compensations(compensations)
    local undone = {}
    for _, comp in ipairs(compensations) do
        local result, err = funcs.call("app:saga_step", comp.action, comp.order_id)
        undone[#undone + 1] = result or tostring(err)
    end
    return undone
end

local function main(order)
    local compensations = {}
    local reserved = funcs.call("app:saga_step", "reserve", order.id)
    table.insert(compensations, 1, {action = "release", order_id = order.id})
    local charged = funcs.call("app:saga_step", "charge", order.id)
    table.insert(compensations, 1, {action = "refund", order_id = order.id})

    local outcome = {steps = {reserved, charged}}
    local err
    if order.wait_with == "activity" then
        -- funcs.call returns nil, err when the workflow is cancelled
        local shipped
        shipped, err = funcs.call("app:slow_ship", order.id)
        outcome.returned_nil = shipped == nil
    else
        -- time.sleep raises an error object
        local ok
        ok, err = pcall(time.sleep, "1h")
        outcome.raised = not ok
    end
    if err == nil then
        return {status = "shipped"}
    end
    if err:kind() ~= "CANCELED" then return nil, err end

    outcome.kind = err:kind()
    outcome.retryable = err:retryable()
    outcome.undone = run_compensations(compensations)
    if order.end_canceled then
        return nil, err  -- the run ends Canceled (after the compensations ran)
    end
    outcome.status = "compensated"
    return outcome
end

return { main = main }

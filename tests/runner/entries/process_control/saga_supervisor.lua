-- process.cancel on a child saga: the child compensates, and its EXIT carries the CANCELED error.
-- With a deadline, a child still running when it passes is terminated.
local function main(input)
    local events = process.events()
    if input.deadline then
        local pid = process.spawn("app:waiter", "app:worker", {on = "stubborn"})
        time.sleep("300ms")
        local ok = process.cancel(pid, input.deadline)
        local event = events:receive()
        return {cancel_ok = ok, kind = event.kind, error_kind = event.result.error and event.result.error:kind()}
    end
    local pid, err = process.spawn("app:order_saga", "app:worker", {id = input.id, end_canceled = true})
    if err then return nil, err end
    time.sleep("300ms")   -- let it reach its long wait
    local ok, cerr = process.cancel(pid)
    local event = events:receive()
    return {cancel_ok = ok, cancel_err = cerr and tostring(cerr), kind = event.kind,
            error_kind = event.result.error and event.result.error:kind(), same = event.from == pid}
end

return { main = main }

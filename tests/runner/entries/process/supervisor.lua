-- Monitor after start (EXIT), and link after start: with trap_links a terminated child sends
-- LINK_DOWN (and no EXIT); without it the link takes this workflow down too.
local function main(input)
    local events = process.events()
    if input.mode == "monitor" then
        local pid = process.spawn("app:long_workflow", "app:worker", {iterations = 5})
        process.unmonitor(pid)
        local ok, err = process.monitor(pid)
        local event = events:receive()   -- EXIT when the workflow completes
        return {monitored = ok, kind = event.kind, value = event.result.value, same = event.from == pid}
    elseif input.mode == "unmonitor" then
        -- after unmonitor, the child's exit sends nothing
        local pid = process.spawn("app:child_workflow", "app:worker", {message = "bye"})
        local ok = process.unmonitor(pid)
        local more = channel.select{events:case_receive(), time.after("1s"):case_receive()}
        return {unmonitored = ok, quiet = more.channel ~= events}
    elseif input.mode == "stranger" then
        -- only the workflows this one spawned can be monitored or linked
        local _, merr = process.monitor("not-my-child")
        local _, lerr = process.link("not-my-child")
        return {monitor = merr:kind(), link = lerr:kind()}
    end
    local ok = process.set_options({trap_links = input.mode == "link"})
    local pid = process.spawn("app:long_workflow", "app:worker", {iterations = 100})
    -- Link after workflow has started
    time.sleep("200ms")
    local linked = process.link(pid)
    process.terminate(pid)
    local event = events:receive()
    -- LINK_DOWN replaces the EXIT a monitored child would send: nothing else arrives
    local more = channel.select{events:case_receive(), time.after("300ms"):case_receive()}
    return {trap = ok, linked = linked, kind = event.kind, error_kind = event.result.error:kind(),
            same = event.from == pid, more = more.channel == events}
end

return { main = main }

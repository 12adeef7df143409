-- Monitor after start (EXIT), and link after start with trap_links (LINK_DOWN on terminate).
local function main(input)
    local events = process.events()
    if input.mode == "monitor" then
        local pid = process.spawn("app:long_workflow", "app:worker", {iterations = 5})
        process.unmonitor(pid)
        local ok, err = process.monitor(pid)
        local event = events:receive()   -- EXIT when the workflow completes
        return {monitored = ok, kind = event.kind, value = event.result.value, same = event.from == pid}
    end
    local ok = process.set_options({trap_links = true})
    local pid = process.spawn("app:long_workflow", "app:worker", {iterations = 100})
    -- Link after workflow has started
    time.sleep("200ms")
    local linked = process.link(pid)
    process.terminate(pid)
    local event = events:receive()
    return {trap = ok, linked = linked, kind = event.kind, error_kind = event.result.error:kind(),
            same = event.from == pid}
end

return { main = main }

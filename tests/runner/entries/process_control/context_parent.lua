-- process.with_context: values for a child (and every activity it calls), merged over this run's own.
local function main()
    local spawner = process.with_context({user_id = "user-1", tenant = "tenant-1"})
    local pid, err = spawner:spawn_monitored("app:context_child", "app:worker", {})
    if err then return nil, err end
    local event = process.events():receive()

    -- a derived spawner is independent of the first one: no user_id here
    local other, err2 = process.with_context({tenant = "tenant-2"}):exec("app:context_child", "app:worker", {})
    if err2 then return nil, err2 end

    return {spawned = event.result.value, spawned_from = tostring(event.from) == tostring(pid),
            exec = other, own = ctx.all()}
end

return { main = main }

local function main(input)
    local counter = input.initial or 0
    local done = false

    coroutine.spawn(function()
        local ch = process.listen("increment", {message = true})
        while not done do
            local msg, ok = ch:receive()
            if not ok then break end
            local data = msg:payload():data()
            counter = counter + data.amount
            process.send(msg:from(), "ok", {value = counter})
        end
    end)

    local events_ch = process.events()
    local child_pid, err = process.spawn("app:counter", "app:worker", {initial = 1})
    if err then
        return {status = "spawn_failed", error = tostring(err)}
    end
    local event = events_ch:receive()
    if event.kind == process.event.EXIT then
        counter = counter + (event.result.value or 0)
    end

    local job_ch = process.listen("add_job")
    local result = channel.select{job_ch:case_receive(), time.after("5s"):case_receive()}
    if result.channel == job_ch then
        funcs.call("app:echo_activity", {job = result.value})
    end
    if workflow.history_length() > 10000 then
        return workflow.continue_as_new({initial = counter})
    end
    done = true
    return {final_counter = counter, child = tostring(child_pid)}
end

return { main = main }

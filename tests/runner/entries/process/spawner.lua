-- Start messages with use_existing: the first spawn's message is delivered before any other signal;
-- a second spawn with the same name reuses the running counter and still delivers its message.
local function main(input)
    local first = process
        .with_options({})
        :with_name(input.name)
        :with_message("increment", {amount = 3})

    local pid, err = first:spawn("app:counter_workflow", "app:worker", {initial = 0})
    if err then return {error = tostring(err)} end
    -- a plain message sent at once still comes after the start message
    process.send(pid, "increment", {amount = 10})

    local second = process
        .with_options({})
        :with_name(input.name)
        :with_message("increment", {amount = 2})

    local pid2, err2 = second:spawn("app:counter_workflow", "app:worker", {initial = 999})
    -- pid2 == pid (same workflow), input {initial = 999} is ignored
    local replies = process.inbox()
    local values = {}
    for _ = 1, 6 do                       -- ack + ok for each increment
        local msg = replies:receive()
        if msg:topic() == "ok" then values[#values + 1] = msg:payload():data().value end
    end
    process.send(pid, "finish", {})
    local exit = process.events():receive()
    return {same = pid2 == pid, err2 = err2 and tostring(err2), values = values, final = exit.result.value}
end

return { main = main }

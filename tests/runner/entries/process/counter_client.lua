-- Drives counter_workflow with messages and collects its acks, naks and ok replies (request/reply).
local function main(input)
    local counter = process.spawn("app:counter_workflow", "app:worker", {initial = input.initial or 0})
    local replies = process.inbox()
    local log = {}

    local function request(topic, payload)
        process.send(counter, topic, payload)
        local first = replies:receive()
        local entry = {topic = topic, reply = first:topic()}
        if first:topic() == "nak" then
            entry.reason = first:payload():data()
        else
            local ok = replies:receive()
            entry.value = ok:payload():data()
        end
        entry.from_counter = first:from() == counter
        log[#log + 1] = entry
    end

    request("increment", {amount = 5})
    request("increment", {amount = "lots"})
    request("decrement", {amount = 2})
    request("decrement", {amount = 10})
    request("finish", {})

    local events = process.events()
    local exit = events:receive()
    return {log = log, final = exit.result.value}
end

return { main = main }

-- Answers one ping with a pong to whoever sent it.
local function main()
    local ch = process.listen("cross_host_ping", {message = true})
    local msg = ch:receive()
    process.send(msg:from(), "cross_host_pong", {echo = msg:payload():data().data, by = tostring(process.self())})
    return {answered = tostring(msg:from())}
end

return { main = main }

-- Messages: "add" {n = 2}, "stop". `flowctl signal WFID add --input '{"n": 2}'` sends one;
-- `flowctl query WFID total` reads the count.
local function main(state)
    local total = state.start or 0
    workflow.on_query("total", function() return total end)
    local inbox = process.inbox()
    while true do
        local chosen = channel.select{inbox:case_receive(), time.after(state.idle or "1m"):case_receive()}
        if chosen.channel ~= inbox then break end          -- quiet for too long
        local msg = chosen.value
        if msg:topic() == "stop" then break end
        if msg:topic() == "add" then total = total + (msg:payload():data().n or 1) end
    end
    local said = funcs.call("{{namespace}}:announce", {total = total})
    return {total = total, said = said}
end

return { main = main }

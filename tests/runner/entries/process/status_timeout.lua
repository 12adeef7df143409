-- Request/reply with a timeout: wait up to input.wait for "get_status".
local function main(input)
    local ch = process.listen("get_status", {message = true})
    local timeout = time.after(input.wait or "5s")
    local result = channel.select{ch:case_receive(), timeout:case_receive()}
    if result.channel == timeout then
        return {status = "timed_out"}
    end
    local msg = result.value
    return {status = "answered", from = msg:from() and tostring(msg:from()) or "client", data = msg:payload():data()}
end

return { main = main }

-- Inbox pattern: wait for "approve" (or "cancel") before processing the order.
local function main(order)
    local inbox = process.inbox()
    while true do
        local msg = inbox:receive()
        local topic = msg:topic()
        local data = msg:payload():data()
        if topic == "approve" then
            break
        elseif topic == "cancel" then
            return {status = "cancelled", reason = data.reason}
        end
    end
    return {status = "approved", order = order.id}
end

return { main = main }

-- A counter driven by messages, queries and updates; cancellation runs a cleanup activity.
local function main(input)
    local total = input.initial or 0
    workflow.version("count-v2", 1, 2)   -- recorded, so `flowctl versions` has a branch to show
    local inbox = process.inbox()

    workflow.on_query("total", function() return total end)
    workflow.on_update("set", function(value)
        total = value
        return total
    end, function(value)
        if type(value) ~= "number" or value < 0 then
            return false, errors.new({kind = "INVALID", message = "set needs a number >= 0"})
        end
        return true
    end)

    while true do
        local ok, msg = pcall(inbox.receive, inbox)
        if not ok then
            -- cancellation: a blocking call failed with CANCELED; clean up, then report it
            local cleaned = funcs.call("ctl:cleanup", {total = total})
            return nil, errors.new({kind = "CANCELED", message = "canceled after cleanup " .. tostring(cleaned and cleaned.done)})
        end
        if msg:topic() == "add" then
            total = total + msg:payload():data().amount
        elseif msg:topic() == "finish" then
            return {total = total}
        end
    end
end

return { main = main }

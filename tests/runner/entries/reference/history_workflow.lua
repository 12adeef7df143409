-- Watch the history grow: every activity call adds events (and bytes).
local funcs = require("funcs")
local workflow = require("workflow")

local function main(key)
    local before = {length = workflow.history_length(), size = workflow.history_size()}
    funcs.call("app:fetch_data", key)
    local length = workflow.history_length()
    local size = workflow.history_size()

    if length > 10000 then
        -- Consider continue-as-new to reset history
        return {continue_as_new = true}
    end
    return {before = before, after = {length = length, size = size}}
end

return { main = main }

local json = require("json")
local M = {}

function M.total(items)
    local sum = 0
    for _, item in ipairs(items) do
        sum = sum + item.price * item.qty
    end
    return sum, json.encode(items)
end

return M

local funcs = require("funcs")

local M = {}

function M.main(input)
    local first = funcs.call("a1", input)
    return funcs.call("app:a2", first)
end

return M

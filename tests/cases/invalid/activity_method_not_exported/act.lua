local M = {}

function M.handle(input)
    return input
end

return M

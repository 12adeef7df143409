-- A library: changing it changes the revision of every workflow that imports it.
local M = {}

function M.total(amount)
    return amount * 2
end

return M

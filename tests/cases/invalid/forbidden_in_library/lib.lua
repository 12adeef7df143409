local M = {}
function M.env() return package.path end
return M

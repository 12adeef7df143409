local M = {}
function M.f(x) return x x end
return M

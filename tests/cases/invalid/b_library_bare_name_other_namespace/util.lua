local M = {}
function M.run(x)
  return funcs.call("act", x)
end
return M

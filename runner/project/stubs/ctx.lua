---@meta ctx

---Context values given by whoever started the run, propagated to children and activities.
---@class ctxlib
ctx = {}

---One context value (nil when absent).
---@param key string
---@return any value
function ctx.get(key) end

---A copy of every context value.
---@return table<string, any> values
function ctx.all() end

return ctx

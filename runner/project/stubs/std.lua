---@meta std

-- The Lua functions the sandbox replaces or adds (docs/sandbox.md): `os` has these only.

os = {}

---Unix seconds of the driver's clock (the workflow's clock in a workflow), or of the date `t`.
---@param t? table
---@return integer seconds
function os.time(t) end

---Seconds of the driver's clock, for measuring (not the CPU time).
---@return number seconds
function os.clock() end

---A date of the driver's clock in the C locale.
---@param format? string
---@param t? integer
---@return string|table date
function os.date(format, t) end

---Reseeds the run's own generator with an explicit seed (the same on every replay); a seed is required.
---@param x integer
---@param y? integer
function math.randomseed(x, y) end

---Runs `fn` concurrently in the same workflow (workflow.lua only).
---@param fn function
function coroutine.spawn(fn) end

-- The Lua half of the `uuid` module (its Python half: uuid.py).
local kit = ...
local call = kit.call
local M = {}

function M.v4()
    return (call({op = "uuid.v4"}))
end

function M.v7()
    return (call({op = "uuid.v7"}))
end

return M

-- The Lua half of the `ctx` module (its Python half: ctx.py): the values are fetched once.
local kit = ...
local call = kit.call
local pairs = kit.pairs
local M = {}
local cache

local function all()
    if cache == nil then cache = call({op = "ctx.all"}, 3) end
    return cache
end

function M.get(key)
    return all()[key]
end

function M.all()
    local copy = {}
    for k, v in pairs(all()) do copy[k] = v end
    return copy
end

return M

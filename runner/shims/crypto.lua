-- The Lua half of the `crypto` module (its Python half: crypto.py).
local kit = ...
local call = kit.call
local error, mtype = kit.error, kit.math_type
local sformat, sgsub, sbyte = kit.format, kit.gsub, kit.byte
local M = {}

function M.random_bytes(n)
    if mtype(n) ~= "integer" or n < 0 then
        error("crypto.random_bytes: n must be a non-negative integer", 2)
    end
    local bytes = call({op = "crypto.random_bytes", n = n})
    return bytes
end

function M.random_hex(n)
    local bytes = M.random_bytes(n)
    return (sgsub(bytes, ".", function(c) return sformat("%02x", sbyte(c)) end))
end

return M

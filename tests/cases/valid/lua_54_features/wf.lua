-- Lua 5.4 syntax the parser must accept: goto/continue, attribs, integer division, bitwise ops, varargs.
local LIMIT <const> = 10

local function sum(...)
    local total = 0
    for i = 1, select("#", ...) do
        local v = select(i, ...)
        if v % 2 == 0 then goto continue end
        total = total + v // 1 | 0 & 0xff ~ 0 << 1 >> 1
        ::continue::
    end
    return total
end

local Counter = {}
Counter.__index = Counter

function Counter.new() return setmetatable({n = 0}, Counter) end
function Counter:add(k) self.n = self.n + (k or 1); return self end

local function main(input)
    local c = Counter.new():add(2):add()
    local s = [==[
a long string with ]] inside]==]
    local t = {1, 2, 3; x = 1, ["y"] = 2, [3 + 1] = 4}
    repeat
        local done = c.n >= LIMIT
        c:add()
    until done
    local ok, err = pcall(function() error({code = 1}) end)
    return funcs.call("act", {sum = sum(1, 2, 3, table.unpack(t)), n = c.n, s = #s, ok = ok, e = err, i = 7 // 2, f = 2^0.5})
end

return { main = main }

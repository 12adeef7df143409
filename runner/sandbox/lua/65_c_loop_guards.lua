-- C loops: the instruction hook counts Lua VM instructions only, so a C function looping on
-- its own is invisible to it. Every library function whose C work grows with its arguments
-- charges the budget for that work (charge(n), 10_limits.lua; one instruction stands for about
-- 2-3 ns of C work: 16 bytes copied or scanned, one table slot moved), and where the length of
-- the work comes from user code (__len, __index), the loop runs as counted Lua instead (the
-- slow paths are in lua/on_demand/40_library.lua). Patterns: lua/on_demand/.
local raw_select, raw_rawlen = select, rawlen
local tinsert, tremove = table.insert, table.remove
local supper, slower, sreverse, ssub_c = string.upper, string.lower, string.reverse, string.sub
local utf8_codepoint, utf8_offset = utf8.codepoint, utf8.offset

-- c_call(fname, fn, ...): a C library function's results; its own errors (which carry no
-- position when it is called from here) are raised at the caller's line, under its Lua name.
-- Where the arguments are known to be good the wrappers below call C directly instead.
function c_call(fname, fn, ...)
    local r = pack(raw_pcall(fn, ...))
    if not r[1] then
        local err = r[2]
        if is_fatal(err) then raw_error(LIMIT_ERROR, 0) end
        if raw_type(err) == "string" and not sfind(err, "^[^\n]-:%d+: ") then
            caller_error((sgsub(err, "^(bad argument #%d+ to ')[^']*'", "%1" .. fname .. "'")))
        end
        raw_error(err, 0)                -- raised by user code C called (__index, __len...)
    end
    return unpack(r, 2, r.n)
end

local function integer(v, default)
    if v == nil then return default end
    local n = (raw_type(v) == "number" or raw_type(v) == "string") and raw_tonumber(v)
    return n and to_integer(n)
end

-- C reads and writes a table without a metatable without calling user code
local function plain(t)
    return raw_type(t) == "table" and debug_getmetatable(t) == nil
end


-- ---------------------------------------------------------------- metamethod chains

-- `t.x` walks a chain of __index tables in C within one VM instruction: setmetatable keeps
-- every chain short (25_metatables.lua).


-- ---------------------------------------------------------------- string

-- string.rep("", n) copies zero bytes n times: a huge n would hang the worker. Otherwise the
-- result's size bounds the work (the memory limit), charged once it is made.
function sb_rep(s, n, sep)
    if s == "" and (sep == nil or sep == "") and raw_type(raw_tonumber(n)) == "number" then return "" end
    local result = c_call("rep", srep, s, n, sep)
    charge(#result // 16 + (integer(n, 0) or 0) // 4)
    return result
end

-- upper, lower, reverse, sub: a copy of (part of) their string
local function copying(fname, fn)
    return function(s, ...)
        local result = raw_type(s) == "string" and fn(s, ...) or c_call(fname, fn, s, ...)
        charge(#result // 16)
        return result
    end
end
sb_upper, sb_lower, sb_reverse = copying("upper", supper), copying("lower", slower), copying("reverse", sreverse)
function sb_sub(s, i, j)
    local result
    if raw_type(s) == "string" and mtype(i) == "integer" and (j == nil or mtype(j) == "integer") then
        result = ssub_c(s, i, j)
    else
        result = c_call("sub", ssub_c, s, i, j)
    end
    charge(#result // 16)
    return result
end

-- ---------------------------------------------------------------- table

-- table.insert(t, pos, v) moves t[pos..#t] up one slot, table.remove(t, pos) down: charged
-- here on a table without a metatable; anything else (a __len decides how far C loops, or a
-- bad argument) goes to lua/on_demand/40_library.lua
function sb_insert(t, ...)
    local n = raw_select("#", ...)
    if n == 1 and raw_type(t) == "table" then return tinsert(t, ...) end   -- append: no loop
    local pos, value = ...
    if n == 2 and mtype(pos) == "integer" and plain(t) then
        local e = raw_rawlen(t) + 1
        if pos >= 1 and pos <= e then
            charge(e - pos)
            return tinsert(t, pos, value)
        end
    end
    return on_demand().insert(t, ...)
end

function sb_remove(t, ...)
    local pos = ...
    if plain(t) then
        if pos == nil then return tremove(t) end                               -- the last one: no loop
        local size = raw_rawlen(t)
        if mtype(pos) == "integer" and pos >= 1 and pos <= size + 1 then
            if pos < size then charge(size - pos) end
            return tremove(t, pos)
        end
    end
    return on_demand().remove(t, ...)
end

-- table.concat(t, sep, i, j)
function sb_concat(t, sep, i, j)
    local first = integer(i, 1)
    if not (plain(t) and (sep == nil or raw_type(sep) == "string") and first and (j == nil or integer(j))) then
        return on_demand().concat(t, sep, i, j)
    end
    -- C stops at the first item that is not there: at most the table's items are read
    local size = raw_rawlen(t)
    local last = integer(j, size)
    local result = c_call("concat", concat, t, sep or "", first, last)
    local count = last - first + 1
    charge(#result // 16 + ((count > 0 and count < size) and count or size))
    return result
end

-- table.unpack(t, i, j): up to a million values (Lua's stack), each read in C
function sb_unpack(t, i, j)
    local first, last = integer(i, 1), integer(j)
    if j == nil and raw_type(t) == "table" then
        local n = #t                       -- (not an integer: C's own error, below)
        last = mtype(n) == "integer" and n or nil
    end
    if first ~= nil and last ~= nil and first <= last and last - first >= 0 and last - first < 1 << 20 then
        charge(last - first + 1)
        return c_call("unpack", unpack, t, first, last)
    end
    return c_call("unpack", unpack, t, i, j)   -- nothing to unpack, or Lua's own error
end

-- table.move(a1, f, e, t, a2) walks the whole range in C, even over nils. Long ranges are
-- moved by Lua code instead, where the instruction budget applies.
local MOVE_IN_C = 1 << 20
function sb_move(a1, f, e, t, a2)
    local fi, ei, ti = integer(f, 0), integer(e, 0), integer(t, 0)
    -- small ranges, and argument errors (C checks them all before it loops), stay with Lua's own
    if fi == nil or ei == nil or ti == nil or ei - fi < MOVE_IN_C or ti > maxinteger - (ei - fi) then
        if fi and ei and ei >= fi and ei - fi < MOVE_IN_C then charge(ei - fi + 1) end
        return c_call("table.move", table_move, a1, f, e, t, a2)
    end
    return on_demand().move_long(a1, fi, ei, ti, a2)
end

-- ---------------------------------------------------------------- utf8

-- utf8.len and utf8.offset decode their string (about 1 ns a byte); codepoint and char make
-- one value per character
local function scanning(fname, fn)
    return function(s, ...)
        if raw_type(s) == "string" then charge(#s // 2) end
        return c_call(fname, fn, s, ...)
    end
end
sb_utf8_len, sb_utf8_offset = scanning("len", utf8_len), scanning("offset", utf8_offset)
function sb_utf8_codepoint(...)
    local r = pack(c_call("codepoint", utf8_codepoint, ...))
    charge(r.n)
    return unpack(r, 1, r.n)
end
function sb_utf8_char(...)
    charge(raw_select("#", ...))
    return c_call("char", utf8_char, ...)
end

-- select(n, ...) copies the arguments after n in C: charged by how many it was given
function sb_select(n, ...)
    charge(raw_select("#", ...))
    return raw_select(n, ...)
end

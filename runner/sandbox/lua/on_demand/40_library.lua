-- Slow paths of library functions: load's reader (lua/10_limits.lua), and table.insert, remove,
-- concat and move (lua/65_c_loop_guards.lua keeps the fast ones: a table without a metatable,
-- good arguments): Lua's own argument errors, and the loops whose length user code decides
-- (__len, __index), run here as counted Lua.

-- read_chunk(reader): the text a load reader gives, or nil and the error it raised (as Lua's
-- load reports it); a limit the reader hits is raised again
function read_chunk(reader)
    local parts, n = {}, 0
    while true do
        local ok, piece = raw_pcall(reader)
        if not ok then
            if is_fatal(piece) then raw_error(LIMIT_ERROR, 0) end
            return nil, piece
        end
        if piece == nil or piece == "" then break end
        if raw_type(piece) ~= "string" then return nil, "reader function must return a string" end
        n = n + 1
        parts[n] = piece
    end
    return concat(parts, "", 1, n)
end

local function integer(v, default)
    if v == nil then return default end
    local n = (raw_type(v) == "number" or raw_type(v) == "string") and raw_tonumber(v)
    return n and to_integer(n)
end

-- #t as C reads it (an integer, or a float or text that is one), or nil (C then raises
-- "object length is not an integer")
local function length(t)
    return integer(#t)
end

-- table.insert(t, pos, v) moves t[pos..#t] up one slot
function table_insert(t, ...)
    if raw_select("#", ...) ~= 2 or raw_type(t) ~= "table" then return c_call("insert", tinsert, t, ...) end
    local pos, value = ...
    local e, p = length(t), integer(pos)
    if e == nil or p == nil or not ult(p - 1, e + 1) then return c_call("insert", tinsert, t, pos, value) end
    for i = e + 1, p + 1, -1 do t[i] = t[i - 1] end
    t[p] = value
end

-- table.remove(t, pos) moves t[pos+1..#t] down one slot
function table_remove(t, ...)
    if raw_type(t) ~= "table" then return c_call("remove", tremove, t, ...) end
    local size = length(t)
    local pos = ...
    local p = integer(pos, size)
    if size == nil or p == nil or (p ~= size and ult(size, p - 1)) then return c_call("remove", tremove, t, pos) end
    if debug_getmetatable(t) == nil then
        if p < size then charge(size - p) end
        return c_call("remove", tremove, t, p)
    end
    local value = t[p]
    while p < size do
        t[p] = t[p + 1]
        p = p + 1
    end
    t[p] = nil
    return value
end

-- table.concat(t, sep, i, j) of a table with a metatable (or bad arguments)
function table_concat(t, sep, i, j)
    local first = integer(i, 1)
    local s = sep == nil and "" or (raw_type(sep) == "string" or raw_type(sep) == "number") and sep
    if not (first and s and raw_type(t) == "table" and (j == nil or integer(j))) then
        return c_call("concat", concat, raw_type(t) == "table" and {} or t, sep, i, j)   -- Lua's own error
    end
    local last = j == nil and length(t) or integer(j)
    if last == nil then return c_call("concat", concat, t, sep, i, j) end
    local parts, n = {}, 0
    for k = first, last do
        local v = t[k]
        if raw_type(v) ~= "string" and raw_type(v) ~= "number" then
            caller_error(sformat("invalid value (%s) at index %d in table for 'concat'", raw_type(v), k))
        end
        n = n + 1
        parts[n] = v
    end
    local result = concat(parts, s, 1, n)
    charge(#result // 16)
    return result
end

-- table.move(a1, f, e, t, a2) over a long range: C walks the whole range, even over nils
function table_move_long(a1, fi, ei, ti, a2)
    if a2 == nil then a2 = a1 end
    if raw_type(a1) ~= "table" or raw_type(a2) ~= "table" then
        caller_error("bad argument to 'move' (table expected)")
    end
    if ti > ei or ti <= fi or a1 ~= a2 then
        for k = 0, ei - fi do a2[ti + k] = a1[fi + k] end
    else
        for k = ei - fi, 0, -1 do a2[ti + k] = a1[fi + k] end
    end
    return a2
end

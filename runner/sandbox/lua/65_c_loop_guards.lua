-- C loops: the instruction hook only counts Lua VM instructions, so a C function looping on
-- its own is invisible to it. Where a loop's length is not bounded by memory, it is bounded here.

-- Lua's pattern matcher backtracks in C, where the instruction hook cannot stop it: each
-- repetition of '.' ('.*', '.-', '.+') multiplies the worst case by the subject's length.
-- Patterns whose worst case on this subject is astronomically long are refused up front.
local PATTERN_WORK = 1e10

local function dot_repetitions(pattern)
    local count, i, n = 0, 1, #pattern
    while i <= n do
        local c = ssub(pattern, i, i)
        if c == "%" then
            i = i + 2
        elseif c == "[" then
            i = i + 1
            if ssub(pattern, i, i) == "^" then i = i + 1 end
            if ssub(pattern, i, i) == "]" then i = i + 1 end
            while i <= n and ssub(pattern, i, i) ~= "]" do
                i = i + (ssub(pattern, i, i) == "%" and 2 or 1)
            end
            i = i + 1
        else
            local q = ssub(pattern, i + 1, i + 1)
            if c == "." and (q == "*" or q == "-" or q == "+") then count = count + 1 end
            i = i + 1
        end
    end
    return count
end

local function guard_pattern(fname, s, pattern, plain)
    if plain or raw_type(s) ~= "string" or raw_type(pattern) ~= "string" then return end
    local dots = dot_repetitions(pattern)
    if dots < 2 then return end
    local anchored = ssub(pattern, 1, 1) == "^"
    if (#s) ^ (dots + (anchored and 0 or 1)) > PATTERN_WORK then
        raw_error(sformat("string.%s: a pattern with %d repetitions of '.' on a %d-byte string could run "
            .. "for hours (the matcher backtracks); anchor it, use fewer '.-'/'.*', or split the string",
            fname, dots, #s), 3)
    end
end

function guarded(fname, fn)
    return function(s, pattern, init, plain)
        guard_pattern(fname, s, pattern, fname == "find" and plain)
        return fn(s, pattern, init, plain)
    end
end

-- string.rep("", n) copies zero bytes n times: a huge n would hang the worker.
function sb_rep(s, n, sep)
    if s == "" and (sep == nil or sep == "") and raw_type(raw_tonumber(n)) == "number" then return "" end
    return srep(s, n, sep)
end

-- table.move(a, 1, math.maxinteger, 1) walks the whole range in C, even over nils. Long
-- ranges are moved by Lua code instead, where the instruction budget applies.
local MOVE_IN_C = 1 << 20
function sb_move(a1, f, e, t, a2)
    local fi, ei = to_integer(raw_tonumber(f) or 0), to_integer(raw_tonumber(e) or 0)
    local ti = to_integer(raw_tonumber(t) or 0)
    -- small ranges, and argument errors (C checks them all before it loops), stay with Lua's own
    if fi == nil or ei == nil or ti == nil or ei - fi < MOVE_IN_C or ti > maxinteger - (ei - fi) then
        local ok, result = raw_pcall(table_move, a1, f, e, t, a2)
        if ok then return result end
        if is_fatal(result) then raw_error(LIMIT_ERROR, 0) end
        -- an argument error points at the caller's line, not at this file
        if raw_type(result) == "string" then raw_error(sgsub(result, "^.-:%d+: ", ""), 2) end
        raw_error(result, 0)
    end
    if a2 == nil then a2 = a1 end
    if raw_type(a1) ~= "table" or raw_type(a2) ~= "table" then
        raw_error("bad argument to 'move' (table expected)", 2)
    end
    if ti > ei or ti <= fi or a1 ~= a2 then
        for i = 0, ei - fi do a2[ti + i] = a1[fi + i] end
    else
        for i = ei - fi, 0, -1 do a2[ti + i] = a1[fi + i] end
    end
    return a2
end

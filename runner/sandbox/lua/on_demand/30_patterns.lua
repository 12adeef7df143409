-- string.find, match, gmatch and gsub on the counted matcher of 20_match.lua, with Lua's
-- own arguments, results and error messages. A plain search (find's 4th argument, or a pattern
-- without special characters) runs in C, charged by the bytes it scans, in windows whose worst
-- case fits the budget.

-- what makes find use the matcher (Lua's nospecials), and what the matcher reads as more than
-- a literal character
local SPECIALS, MATCHER_SPECIALS = "[%^%$%*%+%?%.%(%[%%%-]", "[%^%$%*%+%?%.%(%)%[%%%-]"

-- Lua's own argument error for arguments the checks below refused: the C function raises it
-- before it does any work (arguments that passed are replaced by harmless ones).
local function argument_error(fname, ...)
    local ok, err = raw_pcall(c_string[fname], ...)
    if ok then err = "bad argument to '" .. fname .. "'" end
    if raw_type(err) == "string" then err = sgsub(err, "to '[^']*'", "to '" .. fname .. "'", 1) end
    caller_error(err)
end

-- protected(f, ...): f(...), with a matcher error raised at the line that called the string function
local function finish(ok, ...)
    if not ok then
        local err = ...
        if is_fatal(err) then raw_error(LIMIT_ERROR, 0) end
        if debug_getmetatable(err) == PATTERN_ERROR then caller_error(err[1]) end
        raw_error(err, 0)
    end
    return ...
end
local function protected(f, ...)
    return finish(raw_pcall(f, ...))
end

local function text(v)
    if raw_type(v) == "string" then return v end
    if raw_type(v) == "number" then return sb_tostring(v) end
    return nil
end

local function integer(v, default)
    if v == nil then return default end
    local n = (raw_type(v) == "number" or raw_type(v) == "string") and raw_tonumber(v)
    return n and to_integer(n)
end

-- Lua's posrelatI: a start position for a string of length n
local function start_at(i, n)
    if i > 0 then return i elseif i == 0 or i < -n then return 1 end
    return n + i + 1
end

-- plain_find(s, p, init): s:find(p, init, true). lmemfind costs up to a memchr call and a
-- memcmp of p per position: small windows first, so a near match costs little.
local WINDOW = 1 << 20
local function plain_find(s, p, init)
    local n, m = #s, #p
    if m == 0 then return init, init - 1 end
    local per, starts, pos = 1 + m // 64, 4096, init
    while true do
        local left = n - m + 2 - pos                      -- start positions pos .. n - m + 1
        if left <= 0 then return nil end
        if left <= starts then
            local a, b = sfind(s, p, pos, true)
            charge(((a or n - m + 2) - pos) * per // 16)
            if a == nil then return nil end
            return a, b
        end
        local a = sfind(ssub(s, pos, pos + starts + m - 2), p, 1, true)
        charge(((a or starts) * per + starts + m) // 16)
        if a then return pos + a - 1, pos + a + m - 2 end
        pos = pos + starts
        if starts * per < WINDOW then starts = starts * 2 end
    end
end

-- A match state: the counted matcher's for a pattern, a plain one's (no captures) for text
local function matcher(s, p)
    if sfind(p, MATCHER_SPECIALS) == nil then return {s = s, level = 0, plain = p} end
    return new_match(s, p)
end

-- captures(ms, s, e, whole): the captures of the match s..e-1 (the match itself if none and whole)
local function captures(ms, s, e, whole)
    local list, count = {}, ms.level
    if count == 0 and whole then return {capture(ms, 0, s, e)}, 1 end
    for i = 1, count do list[i] = capture(ms, i - 1, s, e) end
    return list, count
end

local function find_aux(find, s, p, init)
    local anchored = sbyte(p, 1) == 94
    local ms = new_match(s, anchored and ssub(p, 2) or p)
    local a, e = search_match(ms, init, anchored)
    if a == nil then return nil end
    local list, count = captures(ms, a, e, not find)
    if find then return a, e - 1, unpack(list, 1, count) end
    return unpack(list, 1, count)
end

local function find_or_match(find, fname, s, p, init, plain)
    local st, pt, i = text(s), text(p), integer(init, 1)
    if not (st and pt and i) then argument_error(fname, st and "" or s, pt and "" or p, i and 1 or init) end
    i = start_at(i, #st)
    if i > #st + 1 then return nil end
    if sfind(pt, find and SPECIALS or MATCHER_SPECIALS) == nil or (find and plain) then
        local a, b = plain_find(st, pt, i)
        if a == nil then return nil elseif find then return a, b end
        return pt
    end
    return protected(find_aux, find, st, pt, i)
end

function pattern_find(s, p, init, plain)
    return find_or_match(true, "find", s, p, init, plain)
end

function pattern_match(s, p, init)
    return find_or_match(false, "match", s, p, init)
end

-- next_match(ms, from, lastmatch): the first match at `from` or later that does not end where
-- the last one did (an empty match there is skipped, as C does): start, end (one past)
local function next_match(ms, from, lastmatch)
    for _ = 1, 2 do
        if from > #ms.s + 1 then return nil end
        local a, e
        if ms.plain then
            local b
            a, b = plain_find(ms.s, ms.plain, from)
            e = a and b + 1
        else
            a, e = search_match(ms, from, false)
        end
        if a == nil or e ~= lastmatch then return a, e end
        from = a + 1
    end
end

function pattern_gmatch(s, p, init)
    local st, pt, i = text(s), text(p), integer(init, 1)
    if not (st and pt and i) then argument_error("gmatch", st and "" or s, pt and "" or p, i and 1 or init) end
    local src, lastmatch = start_at(i, #st), nil
    local ms = protected(matcher, st, pt)
    local function step()
        if src > #st + 1 then return nil end
        local a, e = next_match(ms, src, lastmatch)
        if a == nil then return nil end
        src, lastmatch = e, e
        local list, count = captures(ms, a, e, true)
        return unpack(list, 1, count)
    end
    return function()
        return protected(step)
    end
end

-- The replacement string as parts: text, or a capture number (0: the whole match)
local function template(repl)
    local parts, k, pos = {}, 0, 1
    while true do
        local at = sfind(repl, "%", pos, true)
        if at == nil then break end
        local c = ssub(repl, at + 1, at + 1)
        parts[k + 1] = ssub(repl, pos, at - 1)
        if c == "%" then
            parts[k + 2] = "%"
        elseif smatch(c, "^%d$") then
            parts[k + 2] = raw_tonumber(c)
        else
            caller_error("invalid use of '%' in replacement string")
        end
        k, pos = k + 2, at + 2
    end
    parts[k + 1] = ssub(repl, pos)
    return parts, k + 1
end

-- the replacement for the match s[a .. e - 1]: its text, and whether it changed anything
local function replacement(ms, a, e, repl, parts, count)
    local whole = ssub(ms.s, a, e - 1)
    if parts then
        local out = {}
        for i = 1, count do
            local part = parts[i]
            if raw_type(part) == "number" then    -- a position capture is a number
                part = raw_tostring(part == 0 and whole or protected(capture, ms, part - 1, a, e))
            end
            out[i] = part
        end
        return concat(out, "", 1, count), true
    end
    local value
    if raw_type(repl) == "table" then
        value = repl[protected(capture, ms, 0, a, e)]
    else
        local list, n = protected(captures, ms, a, e, true)
        value = repl(unpack(list, 1, n))
    end
    if not value then return whole, false end
    local kind = raw_type(value)
    if kind ~= "string" and kind ~= "number" then caller_error("invalid replacement value (a " .. kind .. ")") end
    return raw_tostring(value), true
end

function pattern_gsub(s, p, repl, max_n)
    local st, pt, kind = text(s), text(p), raw_type(repl)
    local n = st and integer(max_n, #st + 1)
    local repl_ok = kind == "string" or kind == "number" or kind == "function" or kind == "table"
    if not (st and pt and n and repl_ok) then
        argument_error("gsub", st and "" or s, pt and "" or p, repl_ok and "" or repl, n and 1 or max_n)
    end
    local anchored = sbyte(pt, 1) == 94
    local ms = protected(matcher, st, anchored and ssub(pt, 2) or pt)
    local parts, nparts
    if kind == "string" or kind == "number" then parts, nparts = template(text(repl)) end
    local out, k, src, lastmatch, done, changed = {}, 0, 1, nil, 0, false
    while done < n do
        local a, e
        if not anchored then
            a, e = protected(next_match, ms, src, lastmatch)
        elseif ms.plain then
            if ssub(st, 1, #ms.plain) == ms.plain then a, e = 1, #ms.plain + 1 end
        else
            e = protected(match_at, ms, 1)
            a = e and 1
        end
        if a == nil then break end
        if a > src then k = k + 1; out[k] = ssub(st, src, a - 1) end
        local piece, changes = replacement(ms, a, e, repl, parts, nparts)
        k, done, changed = k + 1, done + 1, changed or changes
        out[k] = piece
        src, lastmatch = e, e
        if anchored then break end
    end
    if not changed then return s, done end
    out[k + 1] = ssub(st, src)
    local result = concat(out, "", 1, k + 1)
    charge(#result // 16)
    return result, done
end

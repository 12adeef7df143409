-- The matcher: a port of Lua 5.4's (lstrlib.c) to Lua, on patterns compiled by 10_compile.lua.
-- The C matcher backtracks inside one C call, where the instruction hook never runs
-- ('a-a-a-a-b' on 3 KB runs for hours; '.-b' on 80 KB for seconds); this one is counted like
-- any Lua code. Linear scans it leaves to C (a run of one class, the next place the first
-- item can match) are charged by length. 30_patterns.lua builds string.find, match, gmatch and
-- gsub on it.

local CAP_UNFINISHED, CAP_POSITION = -1, -2
local MAXCCALLS, MAXCAPTURES = 200, 32

-- A pattern error (malformed pattern, too complex...): 30_patterns.lua raises its text at
-- the caller's line, as the C functions do.
PATTERN_ERROR = {}
local function fail(message)
    raw_error(raw_setmetatable({message}, PATTERN_ERROR), 0)
end

-- The match in progress (set by prepare): subject, its length, items, captures, depth left.
local S, N, ITEMS, LEVEL, DEPTH
local CINIT, CLEN

local do_match

local function max_expand(si, item, pi)
    local count, set = 0, item[2]
    if item[6] == nil then                               -- '.': to the end
        count = N - si + 1
    else
        while count < 16 and set[sbyte(S, si + count)] do count = count + 1 end
        if count == 16 and (N - si) // 2 < budget_left() then   -- a long run: a linear scan in C
            local _, e = sfind(S, item[6], si)
            count = e - si + 1
            charge(count // 2)
        else
            while set[sbyte(S, si + count)] do count = count + 1 end
        end
    end
    for i = count, 0, -1 do
        local res = do_match(si + i, pi + 1)
        if res then return res end
    end
    return nil
end

local function min_expand(si, set, pi)
    while true do
        local res = do_match(si, pi + 1)
        if res then return res end
        if not set[sbyte(S, si)] then return nil end
        si = si + 1
    end
end

local function capture_result(si, pi, l, len)
    local saved = CLEN[l]
    CLEN[l] = len
    local res = do_match(si, pi)
    if res == nil then CLEN[l] = saved end
    return res
end

-- do_match(si, pi): where a match of items pi.. starting at S[si] ends (one past), or nil
function do_match(si, pi)
    if DEPTH == 0 then fail("pattern too complex") end
    DEPTH = DEPTH - 1
    while true do
        local item = ITEMS[pi]
        if item == nil then break end
        local op = item[1]
        if op == "single" then
            local set, suffix = item[2], item[3]
            if not set[sbyte(S, si)] then
                if suffix == 42 or suffix == 45 or suffix == 63 then pi = pi + 1   -- '*', '-', '?' accept none
                else si = nil; break end
            elseif suffix == nil then si, pi = si + 1, pi + 1
            elseif suffix == 63 then                                              -- '?'
                local res = do_match(si + 1, pi + 1)
                if res then si = res; break end
                pi = pi + 1
            elseif suffix == 45 then si = min_expand(si, set, pi); break          -- '-'
            else si = max_expand(suffix == 43 and si + 1 or si, item, pi); break  -- '+', '*'
            end
        elseif op == "open" then
            if LEVEL >= MAXCAPTURES then fail("too many captures") end
            LEVEL = LEVEL + 1
            CINIT[LEVEL], CLEN[LEVEL] = si, item[2] and CAP_POSITION or CAP_UNFINISHED
            local res = do_match(si, pi + 1)
            if res == nil then LEVEL = LEVEL - 1 end
            si = res
            break
        elseif op == "close" then
            local l = LEVEL
            while l > 0 and CLEN[l] ~= CAP_UNFINISHED do l = l - 1 end
            if l == 0 then fail("invalid pattern capture") end
            si = capture_result(si, pi + 1, l, si - CINIT[l])
            break
        elseif op == "end" then
            if si ~= N + 1 then si = nil end
            break
        elseif op == "balance" then
            local open, close = item[2], item[3]
            if sbyte(S, si) ~= open then si = nil; break end
            local depth, j = 1, si + 1
            while j <= N and depth > 0 do
                local b = sbyte(S, j)
                if b == close then depth = depth - 1 elseif b == open then depth = depth + 1 end
                j = j + 1
            end
            if depth > 0 then si = nil; break end
            si, pi = j, pi + 1
        elseif op == "frontier" then
            local set = item[2]
            if set[si > 1 and sbyte(S, si - 1) or 0] or not set[sbyte(S, si) or 0] then si = nil; break end
            pi = pi + 1
        elseif op == "backref" then
            local l = item[2]
            if l < 1 or l > LEVEL or CLEN[l] == CAP_UNFINISHED then fail(sformat("invalid capture index %%%d", l)) end
            local len = CLEN[l]
            if len < 0 or N - si + 1 < len or ssub(S, CINIT[l], CINIT[l] + len - 1) ~= ssub(S, si, si + len - 1) then
                si = nil; break
            end
            si, pi = si + len, pi + 1
        else
            fail(item[2])
        end
    end
    DEPTH = DEPTH + 1
    return si
end

-- A compiled pattern per pattern text, for the patterns a run uses most (bounded: a run that
-- makes patterns on the fly starts the cache over).
local cache, cached = {}, 0
local function compiled(p)
    local hit = cache[p]
    if hit then return hit end
    if cached >= 64 then cache, cached = {}, 0 end
    local items, n = compile_pattern(p)
    hit = {items = items, n = n}
    cache[p], cached = hit, cached + 1
    return hit
end

-- The captures of the last match. One pair of arrays serves every match: a match's captures
-- are read (capture) before any user code can run and start another (30_patterns.lua).
CINIT, CLEN = {}, {}

-- new_match(s, p): a match state for subject s and pattern text p (without a leading '^')
function new_match(s, p)
    return {s = s, n = #s, items = compiled(p).items, level = 0}
end

local function prepare(ms)
    S, N, ITEMS, DEPTH, LEVEL = ms.s, ms.n, ms.items, MAXCCALLS, 0
end

-- match_at(ms, si): where a match starting at s[si] ends (one past), or nil
function match_at(ms, si)
    prepare(ms)
    local e = do_match(si, 1)
    ms.level = LEVEL
    return e
end

-- search(ms, si, anchored): the first match starting at si or later: start, end (one past)
function search_match(ms, si, anchored)
    prepare(ms)
    local first = ITEMS[1]
    -- a match must start where the first item matches: C finds the next such place
    local skip = not anchored and first and first[1] == "single" and (first[3] == nil or first[3] == 43)
        and (first[4] or first[5])
    local plain = skip and first[4] ~= nil
    local cost = plain and 1 or 64                       -- per 16 bytes: memchr, or C's matcher
    if skip and (N - si) // 16 * cost >= budget_left() then skip = nil end
    while si <= N + 1 do
        if skip then
            local at = sfind(S, skip, si, plain)
            charge(((at or N + 1) - si) // 16 * cost)
            if at == nil then return nil end
            si = at
        end
        LEVEL = 0
        local e = do_match(si, 1)
        if e then
            ms.level = LEVEL
            return si, e
        end
        if anchored then return nil end
        si = si + 1
    end
    return nil
end

-- capture(ms, i, s, e): the i-th capture (0-based) of the match s..e-1 (the whole match if none)
function capture(ms, i, s, e)
    if i >= ms.level then
        if i ~= 0 then fail(sformat("invalid capture index %%%d", i + 1)) end
        return ssub(ms.s, s, e - 1)
    end
    local len = CLEN[i + 1]
    if len == CAP_UNFINISHED then fail("unfinished capture") end
    if len == CAP_POSITION then return CINIT[i + 1] end
    return ssub(ms.s, CINIT[i + 1], CINIT[i + 1] + len - 1)
end

-- Patterns, compiled for the counted matcher of 20_match.lua: a pattern text becomes a list of
-- items, each a single-character class (as the set of bytes it matches, with its repetition
-- suffix), a capture, an anchor, %b, %f or a back reference. Classes are the C locale's
-- (isalpha... of lstrlib.c), whatever the process locale.

local function range(lo, hi) return function(c) return c >= lo and c <= hi end end
local is_lower, is_upper, is_digit = range(97, 122), range(65, 90), range(48, 57)
local CLASSES = {
    a = function(c) return is_lower(c) or is_upper(c) end,
    c = function(c) return c < 32 or c == 127 end,
    d = is_digit,
    g = range(33, 126),
    l = is_lower,
    p = function(c) return (c >= 33 and c <= 47) or (c >= 58 and c <= 64) or (c >= 91 and c <= 96)
        or (c >= 123 and c <= 126) end,
    s = function(c) return c == 32 or (c >= 9 and c <= 13) end,
    u = is_upper,
    w = function(c) return is_lower(c) or is_upper(c) or is_digit(c) end,
    x = function(c) return is_digit(c) or (c >= 97 and c <= 102) or (c >= 65 and c <= 70) end,
    z = function(c) return c == 0 end,
}

-- match_class(c, cl): does byte c belong to %cl (lstrlib's match_class)?
local function match_class(c, cl)
    local test = CLASSES[schar(is_upper(cl) and cl + 32 or cl)]
    if test == nil then return cl == c end
    if is_upper(cl) then return not test(c) end
    return test(c)
end

-- The set of bytes a single-character class matches, as {[byte] = true}: p[i .. ep - 1] is
-- '.', '%x', '[...]' or a literal character. ANY ('.') is made when a pattern first needs it.
local ANY
local function class_set(p, i, ep)
    local first = sbyte(p, i)
    if first == 46 then                                                     -- '.'
        if ANY == nil then
            ANY = {}
            for c = 0, 255 do ANY[c] = true end
        end
        return ANY
    end
    local test
    if first == 37 then                                                     -- '%x'
        local cl = sbyte(p, i + 1)
        test = function(c) return match_class(c, cl) end
    elseif first == 91 then                                                 -- '[...]'
        test = function(c)
            local j, found = i + 1, false
            local negate = sbyte(p, j) == 94
            if negate then j = j + 1 end
            while j < ep - 1 and not found do
                local b = sbyte(p, j)
                if b == 37 then
                    j = j + 1
                    found = match_class(c, sbyte(p, j))
                elseif sbyte(p, j + 1) == 45 and j + 2 < ep - 1 then        -- a range 'a-z'
                    found = b <= c and c <= sbyte(p, j + 2)
                    j = j + 2
                else
                    found = b == c
                end
                j = j + 1
            end
            if negate then return not found end
            return found
        end
    else
        return {[first] = true}
    end
    local set = {}
    for c = 0, 255 do if test(c) then set[c] = true end end
    return set
end

-- classend(p, i): where the single-character class starting at p[i] ends (lstrlib's classend)
local function classend(p, i, n)
    local c = sbyte(p, i)
    i = i + 1
    if c == 37 then
        if i > n then return nil, "malformed pattern (ends with '%')" end
        return i + 1
    elseif c == 91 then
        if sbyte(p, i) == 94 then i = i + 1 end
        repeat
            if i > n then return nil, "malformed pattern (missing ']')" end
            local b = sbyte(p, i)
            i = i + 1
            if b == 37 and i <= n then i = i + 1 end
        until sbyte(p, i) == 93
        return i + 1
    end
    return i
end

-- compile_pattern(p): the pattern (without a leading '^') as a list of items {op, ...}, and
-- their count. What C reports only once the matcher reaches it (a malformed class...) becomes
-- a "malformed" item, raised when the matcher reaches it.
function compile_pattern(p)
    local items, k, i, n = {}, 0, 1, #p
    local function add(item) k = k + 1; items[k] = item end
    while i <= n do
        local c, d = sbyte(p, i), sbyte(p, i + 1)
        if c == 40 then                                                     -- '('
            if d == 41 then add({"open", true}); i = i + 2 else add({"open", false}); i = i + 1 end
        elseif c == 41 then add({"close"}); i = i + 1                         -- ')'
        elseif c == 36 and i == n then add({"end"}); i = i + 1             -- '$' at the end
        elseif c == 37 and d == 98 then                                     -- '%b'
            if i + 3 > n then add({"malformed", "malformed pattern (missing arguments to '%b')"}); break end
            add({"balance", sbyte(p, i + 2), sbyte(p, i + 3)}); i = i + 4
        elseif c == 37 and d == 102 then                                    -- '%f'
            if sbyte(p, i + 2) ~= 91 then add({"malformed", "missing '[' after '%f' in pattern"}); break end
            local ep, err = classend(p, i + 2, n)
            if ep == nil then add({"malformed", err}); break end
            add({"frontier", class_set(p, i + 2, ep)}); i = ep
        elseif c == 37 and d ~= nil and is_digit(d) then add({"backref", d - 48}); i = i + 2   -- '%1'
        else
            local ep, err = classend(p, i, n)
            if ep == nil then add({"malformed", err}); break end
            local suffix = sbyte(p, ep)
            if suffix ~= 42 and suffix ~= 43 and suffix ~= 45 and suffix ~= 63 then suffix = nil end
            -- for C's linear scans: a literal character (plain text), and the class as a pattern
            local text = ssub(p, i, ep - 1)
            local literal = (ep == i + 1 and c ~= 46 and c ~= 91) or (c == 37 and not smatch(text, "^%%%w"))
            local char = literal and ssub(text, -1) or nil
            if char and not smatch(char, "^%w$") then text = "%" .. char end
            add({"single", class_set(p, i, ep), suffix, char, c ~= 46 and text or nil,
                 c ~= 46 and "^" .. text .. "*" or nil})
            i = suffix and ep + 1 or ep
        end
    end
    return items, k
end

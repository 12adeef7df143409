-- Determinism: what the same program must do the same way on every run and on its replay.
-- Iteration order is the keys' order (never the hash table's), sorting never picks a random
-- pivot, text never shows an address (nor a NaN's sign), and nothing runs at garbage-collection
-- time (25_metatables.lua).
local mabs = math.abs

-- tostring without addresses: tables, functions and threads print their type (or __name).
function sb_tostring(v)
    local mt = debug_getmetatable(v)
    if mt ~= nil and raw_type(v) ~= "string" then
        local ts = raw_rawget(mt, "__tostring")
        if ts ~= nil then
            local s = ts(v)
            if raw_type(s) ~= "string" then raw_error("'__tostring' must return a string", 2) end
            return s
        end
        local name = raw_rawget(mt, "__name")
        if raw_type(name) == "string" then return name end
    end
    local t = raw_type(v)
    if t == "table" or t == "function" or t == "thread" or t == "userdata" then return t end
    if v ~= v then return "nan" end     -- C prints 0/0 as "-nan" on x86-64, "nan" on aarch64
    return raw_tostring(v)
end

-- Text of a value for Python, without running metamethods (Python's str() of a Lua table
-- would run its __tostring outside any instruction budget) and without addresses.
function plain_text(v)
    local t = raw_type(v)
    if t == "string" then return v end
    if t == "number" or t == "boolean" or t == "nil" then return v ~= v and "nan" or raw_tostring(v) end
    return "(a " .. t .. " value)"
end

-- A total order on keys: numbers, then strings, then booleans (false first). Other keys
-- (tables, functions) have no replay-stable order; they come last, in table order.
local KEY_RANK = {number = 1, string = 2, boolean = 3}
local function key_less(a, b)
    local ra, rb = KEY_RANK[raw_type(a)] or 4, KEY_RANK[raw_type(b)] or 4
    if ra ~= rb then return ra < rb end
    if ra == 1 or ra == 2 then return a < b end
    if ra == 3 then return (not a) and b end
    return false
end

-- Stable merge sort: no random pivot (Lua's own sort seeds one from the clock).
local function merge_sort(t, n, less)
    if n < 2 then return end
    -- insertion sort for short runs, then merge runs of doubling width
    local RUN = 16
    for lo = 1, n, RUN do
        local hi = lo + RUN - 1
        if hi > n then hi = n end
        for i = lo + 1, hi do
            local v = t[i]
            local j = i - 1
            while j >= lo and less(v, t[j]) do
                t[j + 1] = t[j]
                j = j - 1
            end
            t[j + 1] = v
        end
    end
    local width = RUN
    local src, dst = t, {}
    while width < n do
        for lo = 1, n, 2 * width do
            local mid, hi = lo + width - 1, lo + 2 * width - 1
            if mid > n then mid = n end
            if hi > n then hi = n end
            local i, j, k = lo, mid + 1, lo
            while i <= mid and j <= hi do
                if less(src[j], src[i]) then
                    dst[k] = src[j]; j = j + 1
                else
                    dst[k] = src[i]; i = i + 1
                end
                k = k + 1
            end
            while i <= mid do dst[k] = src[i]; i = i + 1; k = k + 1 end
            while j <= hi do dst[k] = src[j]; j = j + 1; k = k + 1 end
        end
        src, dst = dst, src
        width = width * 2
    end
    if src ~= t then
        for i = 1, n do t[i] = src[i] end
    end
end

-- What sorting n keys is charged: a fixed n * (levels + 1) * 12 instructions (about what the
-- merge sort takes), not what it counts. The comparisons it makes depend on the order raw_next
-- gives, which depends on the interpreter's string-hash seed: counted, a run near its budget
-- could hit the limit in one interpreter and not in its replay's.
local function sort_cost(n)
    local levels, width = 0, 1
    while width < n do width, levels = width * 2, levels + 1 end
    return n * (levels + 1) * 12
end

function sorted_keys(t)
    local keys, n = {}, 0
    for k in raw_next, t do
        n = n + 1
        keys[n] = k
    end
    if n > 1 then
        charge(sort_cost(n))
        unmetered(merge_sort, keys, n, key_less)   -- key_less runs no user code: bounded work
    end
    return keys, n
end

-- next() in a stable order: the keys' sort order, not the hash table's.
function sb_next(t, key)
    if raw_type(t) ~= "table" then
        raw_error("bad argument #1 to 'next' (table expected, got " .. raw_type(t) .. ")", 2)
    end
    if key == nil and raw_next(t) == nil then return nil end
    local keys, n = sorted_keys(t)
    local i = 0
    if key ~= nil then
        for j = 1, n do
            if raw_rawequal(keys[j], key) then i = j; break end
        end
        if i == 0 then raw_error("invalid key to 'next'", 2) end
    end
    local k = keys[i + 1]
    if k == nil then return nil end
    return k, raw_rawget(t, k)
end

function sb_pairs(t)
    local mt = debug_getmetatable(t)
    local mm = mt and raw_rawget(mt, "__pairs")
    if mm then
        local f, s, c = mm(t)
        return f, s, c
    end
    if raw_type(t) ~= "table" then
        raw_error("bad argument #1 to 'for iterator' (table expected, got " .. raw_type(t) .. ")", 2)
    end
    local keys, n = sorted_keys(t)
    local i = 0
    return function()
        while i < n do
            i = i + 1
            local k = keys[i]
            local v = raw_rawget(t, k)
            if v ~= nil then return k, v end   -- a key removed during the loop is skipped
        end
        return nil
    end, t, nil
end

function sb_sort(t, less)
    if raw_type(t) ~= "table" then
        raw_error("bad argument #1 to 'sort' (table expected, got " .. raw_type(t) .. ")", 2)
    end
    if less ~= nil and raw_type(less) ~= "function" then
        raw_error("bad argument #2 to 'sort' (function expected, got " .. raw_type(less) .. ")", 2)
    end
    local n = #t
    local items = {}
    for i = 1, n do items[i] = t[i] end
    merge_sort(items, n, less or function(a, b) return a < b end)
    for i = 1, n do t[i] = items[i] end
end

-- string.format without %p (addresses) and with %s using the address-free tostring.
function sb_format(fmt, ...)
    if raw_type(fmt) ~= "string" then return sformat(fmt, ...) end
    local args = pack(...)
    local index = 0
    charge(#fmt * 4)                  -- C's matcher reads every byte (65_c_loop_guards.lua)
    for spec in sgmatch(fmt, "%%[-+ #0]*%d*%.?%d*(.)") do
        if spec ~= "%" then
            index = index + 1
            if spec == "p" then
                raw_error("string.format: %p is not available (addresses differ between runs)", 2)
            elseif spec == "s" then
                local v = args[index]
                if raw_type(v) ~= "string" and (raw_type(v) ~= "number" or v ~= v) then
                    args[index] = sb_tostring(v)
                end
            elseif raw_type(args[index]) == "number" and args[index] ~= args[index]
                    and sfind("aAeEfFgG", spec, 1, true) then
                args[index] = mabs(args[index])    -- a NaN without its sign: "nan" on every platform
            end
        end
    end
    local result = sformat(fmt, unpack(args, 1, args.n))
    charge(#result // 16)
    return result
end

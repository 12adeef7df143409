-- The trusted half of flowctl's Lua sandbox (runner/sandbox/runtime.py runs it once per runtime).
--
-- It runs in the runtime's real globals, keeps the dangerous functions (debug, raw
-- coroutine, load with binary mode, string.dump, os, io) in upvalues, and builds the
-- environment user code runs in: an allow-list of base functions and libraries, each
-- replaced by a deterministic or bounded version where the original is not. It returns
-- one control table for the Python side; user code never sees that table, nor `debug`.
--
-- Commands: a shim calls yield_command(cmd); the whole stack of Lua coroutines up to a
-- thread the driver started yields (CMD, cmd); the driver answers and resumes it.

local config = ...

local raw_yield, raw_resume, raw_status = coroutine.yield, coroutine.resume, coroutine.status
local raw_create, raw_running, raw_close = coroutine.create, coroutine.running, coroutine.close
local raw_isyieldable = coroutine.isyieldable
local raw_pcall, raw_xpcall, raw_error, raw_load = pcall, xpcall, error, load
local raw_next, raw_type, raw_tostring, raw_select = next, type, tostring, select
local raw_rawget, raw_rawset, raw_rawlen, raw_rawequal = rawget, rawset, rawlen, rawequal
local raw_setmetatable, raw_getmetatable = setmetatable, getmetatable
local debug_getmetatable, sethook, getinfo, traceback = debug.getmetatable, debug.sethook, debug.getinfo,
    debug.traceback
local pack, unpack, concat, insert = table.pack, table.unpack, table.concat, table.insert
local sfind, sformat, sgsub, ssub, sbyte, smatch, srep = string.find, string.format, string.gsub, string.sub,
    string.byte, string.match, string.rep
local mtype, mfloor, mhuge = math.type, math.floor, math.huge
local utf8_len, utf8_char = utf8.len, utf8.char
local os_date = os.date

-- Sentinel first value of every command yield: user code can neither see nor forge it.
local CMD = raw_setmetatable({}, {__name = "flowctl.command", __metatable = false})

---------------------------------------------------------------------------- limits
-- The instruction budget is counted by a count hook every TICK VM instructions. Hooks
-- are per Lua thread, so every coroutine the sandbox creates gets it installed.
local TICK = 1000
local budget_ticks, ticks = 0, 0
local limit_hit = nil            -- {name, where} once a limit was exceeded: the run is over
local LIMIT_ERROR = raw_setmetatable({}, {
    __name = "flowctl.LimitExceeded",
    __tostring = function() return "flowctl: sandbox limit exceeded" end,
})

local function frame_where(info)
    if info == nil then return nil end
    return info.short_src .. ":" .. (info.currentline or 0)
end

-- The innermost frame of user code (chunks named "@file.lua"; flowctl's own are "=name").
local function user_where(co, from)
    for level = from or 0, 200 do
        local info
        if co then
            local ok
            ok, info = raw_pcall(getinfo, co, level, "Sl")
            if not ok then
                -- a coroutine whose stack overflowed has no room left for getinfo; its
                -- traceback needs none: take the first frame of a user file from it
                return smatch(traceback(co, "", level), "\n\t([^\n]-%.lua:%d+):")
            end
        else
            info = getinfo(level, "Sl")
        end
        if info == nil then return nil end
        if info.what ~= "C" and ssub(info.source, 1, 1) == "@" then return frame_where(info) end
    end
    return nil
end

local function hook()
    ticks = ticks + 1
    if ticks > budget_ticks then
        if limit_hit == nil then
            limit_hit = {"instructions", user_where(nil, 2) or frame_where(getinfo(2, "Sl")) or "?"}
        end
        raw_error(LIMIT_ERROR, 0)
    end
end

local function install_hook(co)
    sethook(co, hook, "", TICK)
    return co
end

-- A limit error must end the run even when user code catches it with pcall: every
-- catching function below re-raises it.
local function is_fatal(err)
    if limit_hit ~= nil or err == LIMIT_ERROR then
        limit_hit = limit_hit or {"instructions", "?"}
        return true
    end
    -- the flag goes up before the location is looked up: that may need memory too
    if err == "not enough memory" then
        limit_hit = {"memory", "?"}
        limit_hit[2] = user_where(nil, 2) or "?"
        return true
    end
    if raw_type(err) == "string" and sfind(err, "stack overflow", 1, true) then
        limit_hit = {"stack", "?"}
        -- the message's position is the user's line unless the overflow hit inside flowctl's code
        limit_hit[2] = smatch(err, "^([^:]-%.lua:%d+):") or user_where(nil, 2) or "?"
        return true
    end
    return false
end

local function rethrow_fatal(ok, ...)
    if not ok and is_fatal((...)) then raw_error(LIMIT_ERROR, 0) end
    return ok, ...
end

---------------------------------------------------------------------------- the environment
local env = {}
local modules = {}         -- name -> module value (listed flowctl modules)
local libraries = {}       -- import alias -> {source = ..., chunkname = ...}
local loaded = {}          -- import alias -> what the library returned
local loading = {}
local owner = "this entry"
local module_names = ""
local now_ns = 0           -- workflow (or wall) time, set by the driver before every resume
local start_ns = nil

local function yield_command(cmd)
    return raw_yield(CMD, cmd)
end

-- tostring without addresses: tables, functions and threads print their type (or __name).
local function sb_tostring(v)
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
    return raw_tostring(v)
end

-- Text of a value for Python, without running metamethods (Python's str() of a Lua table
-- would run its __tostring outside any instruction budget) and without addresses.
local function plain_text(v)
    local t = raw_type(v)
    if t == "string" then return v end
    if t == "number" or t == "boolean" or t == "nil" then return raw_tostring(v) end
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

local function sorted_keys(t)
    local keys, n = {}, 0
    for k in raw_next, t do
        n = n + 1
        keys[n] = k
    end
    merge_sort(keys, n, key_less)
    return keys, n
end

-- next() in a stable order: the keys' sort order, not the hash table's.
local function sb_next(t, key)
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

local function sb_pairs(t)
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

local function sb_sort(t, less)
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
local function sb_format(fmt, ...)
    if raw_type(fmt) ~= "string" then return sformat(fmt, ...) end
    local args = pack(...)
    local index = 0
    for spec in string.gmatch(fmt, "%%[-+ #0]*%d*%.?%d*(.)") do
        if spec ~= "%" then
            index = index + 1
            if spec == "p" then
                raw_error("string.format: %p is not available (addresses differ between runs)", 2)
            elseif spec == "s" then
                local v = args[index]
                if raw_type(v) ~= "string" and raw_type(v) ~= "number" then args[index] = sb_tostring(v) end
            end
        end
    end
    return sformat(fmt, unpack(args, 1, args.n))
end

local function sb_pcall(f, ...)
    return rethrow_fatal(raw_pcall(f, ...))
end

local function sb_xpcall(f, handler, ...)
    return rethrow_fatal(raw_xpcall(f, function(err)
        if is_fatal(err) then return err end
        return handler(err)
    end, ...))
end

-- Finalizers and weak tables run at garbage-collection time, which differs between a run
-- and its replay; refusing them keeps every effect in program order.
local GC_FIELDS = {
    __gc = "__gc finalizers are not allowed in the sandbox (they run at garbage-collection time, "
        .. "which is not deterministic)",
    __mode = "weak tables (__mode) are not allowed in the sandbox (entries vanish at garbage-collection "
        .. "time, which is not deterministic)",
}

-- A metatable in use keeps refusing them: Lua honours a __mode added later, so the guard
-- stays on the metatable itself (and rawset checks for it too).
local MT_GUARD = {__metatable = false}
MT_GUARD.__newindex = function(mt, key, value)
    if GC_FIELDS[key] then raw_error("setmetatable: " .. GC_FIELDS[key], 2) end
    raw_rawset(mt, key, value)
end

local function sb_setmetatable(t, mt)
    if raw_type(mt) == "table" then
        for field, why in raw_next, GC_FIELDS do
            if raw_rawget(mt, field) ~= nil then raw_error("setmetatable: " .. why, 2) end
        end
        if debug_getmetatable(mt) == nil then raw_setmetatable(mt, MT_GUARD) end
    end
    return raw_setmetatable(t, mt)
end

local function sb_rawset(t, key, value)
    if GC_FIELDS[key] and debug_getmetatable(t) == MT_GUARD then
        raw_error("rawset: " .. GC_FIELDS[key], 2)
    end
    return raw_rawset(t, key, value)
end

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

local function guarded(fname, fn)
    return function(s, pattern, init, plain)
        guard_pattern(fname, s, pattern, fname == "find" and plain)
        return fn(s, pattern, init, plain)
    end
end

local function sb_load(chunk, chunkname, mode, chunk_env)
    if mode ~= nil and mode ~= "t" then
        raw_error("load: only text chunks are allowed in the sandbox (mode must be \"t\")", 2)
    end
    if chunk_env == nil then chunk_env = env end
    return raw_load(chunk, chunkname or "=(load)", "t", chunk_env)
end

local function sb_require(name)
    if raw_type(name) ~= "string" then
        raw_error("bad argument #1 to 'require' (string expected, got " .. raw_type(name) .. ")", 2)
    end
    local m = modules[name]
    if m ~= nil then return m end
    local value = loaded[name]
    if value ~= nil then return value end
    local lib = libraries[name]
    if lib == nil then
        raw_error(sformat("module '%s' is not available in %s: list it under `modules:` (available: %s) "
            .. "or import a library.lua entry under `imports:`", name, owner, module_names), 2)
    end
    if loading[name] then raw_error("require: import cycle through '" .. name .. "'", 2) end
    local fn, err = raw_load(lib.source, "@" .. lib.chunkname, "t", env)
    if fn == nil then raw_error(err, 0) end
    loading[name] = true
    local ok, result = raw_pcall(fn, name)
    loading[name] = nil
    if not ok then raw_error(result, 0) end
    if result == nil then result = true end
    loaded[name] = result
    return result
end

---------------------------------------------------------------------------- coroutines
-- User coroutines are plain Lua coroutines, except that a command yielded inside one is
-- passed up to the driver and its answer passed back down: shims work at any depth.
local function sb_create(f)
    if raw_type(f) ~= "function" then
        raw_error("bad argument #1 to 'create' (function expected, got " .. raw_type(f) .. ")", 2)
    end
    return install_hook(raw_create(f))
end

-- Threads only the driver may resume: its own (main, spawned, handlers) and coroutines
-- parked on a command. Resuming one from Lua would hand it a forged command reply.
local driver_owned = {}

local function check_not_driver_owned(co, what)
    if driver_owned[co] then
        raw_error("coroutine." .. what .. ": this coroutine belongs to the workflow driver (it runs "
            .. "workflow code or waits for a command's answer); only flowctl resumes it", 3)
    end
end

local forward
local function forward_answer(co, ...)
    driver_owned[co] = nil
    return forward(co, raw_resume(co, ...))
end

forward = function(co, ok, first, ...)
    if ok and first == CMD and raw_status(co) == "suspended" then
        driver_owned[co] = true
        return forward_answer(co, raw_yield(CMD, ...))   -- tail calls: no stack growth
    end
    if not ok and is_fatal(first) then raw_error(LIMIT_ERROR, 0) end
    return ok, first, ...
end

local function sb_resume(co, ...)
    if raw_type(co) ~= "thread" then
        raw_error("bad argument #1 to 'resume' (coroutine expected, got " .. raw_type(co) .. ")", 2)
    end
    check_not_driver_owned(co, "resume")
    return forward(co, raw_resume(co, ...))
end

local function sb_close(co)
    if raw_type(co) == "thread" then check_not_driver_owned(co, "close") end
    return raw_close(co)
end

local function wrap_result(ok, ...)
    if not ok then raw_error((...), 0) end
    return ...
end

local function sb_wrap(f)
    local co = sb_create(f)
    return function(...)
        return wrap_result(sb_resume(co, ...))
    end
end

local function sb_spawn(fn)
    if raw_type(fn) ~= "function" then
        raw_error("coroutine.spawn: expected a function, got " .. raw_type(fn), 2)
    end
    local ok, err = yield_command({op = "coroutine.spawn", fn = fn})
    if not ok then raw_error(err, 2) end
end

---------------------------------------------------------------------------- json
local NULL = raw_setmetatable({}, {
    __name = "json.null",
    __tostring = function() return "null" end,
    __newindex = function() raw_error("json.null is a constant", 2) end,
    __metatable = false,
})
-- getmetatable() shows users a name, not these tables: nobody can add a __gc to them.
local ARRAY_MT = {__name = "json.array", __metatable = "json.array"}
local OBJECT_MT = {__name = "json.object", __metatable = "json.object"}

local ValueError = {}     -- raised (as a table) by encode/decode; caught in this file

local function path_string(root, stack, depth)
    local parts = {root}
    for i = 1, depth do
        local k = stack[i]
        if raw_type(k) == "number" or raw_type(k) == "boolean" then
            parts[#parts + 1] = "[" .. raw_tostring(k) .. "]"
        elseif raw_type(k) ~= "string" then
            parts[#parts + 1] = "[" .. raw_type(k) .. "]"     -- never an address
        elseif smatch(k, "^[%a_][%w_]*$") then
            parts[#parts + 1] = "." .. k
        else
            parts[#parts + 1] = sformat("[%q]", k)
        end
    end
    return concat(parts)
end

local ESCAPES = {['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n",
                 ["\r"] = "\\r", ["\t"] = "\\t"}
local function escape_char(c)
    return ESCAPES[c] or sformat("\\u%04x", sbyte(c))
end

local function format_float(v)
    for _, f in ipairs({"%.15g", "%.16g", "%.17g"}) do
        local s = sformat(f, v)
        if tonumber(s) == v then
            if not sfind(s, "[%.eE]") then s = s .. ".0" end
            return s
        end
    end
    return sformat("%.17g", v)
end

local function rfc3339(ns)
    local secs, frac = ns // 1000000000, ns % 1000000000
    local text = os_date("!%Y-%m-%dT%H:%M:%S", secs)
    if frac ~= 0 then text = text .. sgsub(sformat(".%09d", frac), "0+$", "") end
    return text .. "Z"
end

-- encode(value, root) -> JSON text; errors name the path (input.items[3].price).
local function encode(value, root)
    local buf, n = {}, 0
    local stack, depth = {}, 0
    local active = {}
    local function fail(message)
        raw_error(raw_setmetatable({message = path_string(root, stack, depth) .. ": " .. message}, ValueError), 0)
    end
    local function emit(s)
        n = n + 1
        buf[n] = s
    end
    local put
    local function put_string(s)
        if utf8_len(s) == nil then
            fail("string is not valid UTF-8 (binary data must be encoded, e.g. as hex, to cross Temporal)")
        end
        emit('"' .. sgsub(s, '[%c"\\]', escape_char) .. '"')
    end
    local function put_table(t, mt)
        if depth >= 100 then fail("tables nested more than 100 levels deep") end
        if active[t] then fail("table refers to itself (a cycle); it cannot be sent") end
        local name = mt and raw_rawget(mt, "__name")
        if name == "flowctl.Duration" then emit(raw_tostring(raw_rawget(t, "ns") // 1000000)); return end
        if name == "flowctl.Time" then put_string(rfc3339(raw_rawget(t, "ns"))); return end
        active[t] = true
        if name == "flowctl.Error" then
            t = {kind = raw_rawget(t, "_kind"), message = raw_rawget(t, "_message"),
                 retryable = raw_rawget(t, "_retryable"), details = raw_rawget(t, "_details"),
                 where = raw_rawget(t, "_where")}
        end
        local count, max_index, has_other = 0, 0, false
        for k in raw_next, t do
            count = count + 1
            if mtype(k) == "integer" and k > 0 then
                if k > max_index then max_index = k end
            else
                has_other = true
            end
        end
        if count == 0 then
            emit(mt == OBJECT_MT and "{}" or "[]")
        elseif not has_other then
            if max_index ~= count then
                fail("array has holes (index " .. max_index .. " but only " .. count .. " items); "
                    .. "fill them with json.null or use string keys")
            end
            emit("[")
            for i = 1, count do
                if i > 1 then emit(",") end
                depth = depth + 1
                stack[depth] = i
                put(raw_rawget(t, i))
                depth = depth - 1
            end
            emit("]")
        else
            local keys, nkeys = sorted_keys(t)
            emit("{")
            for i = 1, nkeys do
                local k = keys[i]
                if raw_type(k) ~= "string" then
                    depth = depth + 1
                    stack[depth] = k
                    if mtype(k) == "integer" then
                        fail("table mixes list items and named keys; use one or the other")
                    end
                    fail("keys must be strings (or 1..n for a list), got a " .. raw_type(k) .. " key")
                end
                if i > 1 then emit(",") end
                put_string(k)
                emit(":")
                depth = depth + 1
                stack[depth] = k
                put(raw_rawget(t, k))
                depth = depth - 1
            end
            emit("}")
        end
        active[t] = nil
    end
    put = function(v)
        local t = raw_type(v)
        if v == nil or v == NULL then
            emit("null")
        elseif t == "boolean" then
            emit(v and "true" or "false")
        elseif t == "number" then
            if mtype(v) == "integer" then
                emit(sformat("%d", v))
            elseif v ~= v or v == mhuge or v == -mhuge then
                fail("number " .. raw_tostring(v) .. " cannot be sent (JSON has no NaN or infinity)")
            else
                emit(format_float(v))
            end
        elseif t == "string" then
            put_string(v)
        elseif t == "table" then
            put_table(v, debug_getmetatable(v))
        else
            fail("a " .. t .. " value cannot be sent (only nil, booleans, numbers, strings and tables can)")
        end
    end
    put(value)
    return concat(buf, "", 1, n)
end

-- decode(text) -> value; arrays and objects come back marked (json.array / json.object).
local function decode(text, root)
    if raw_type(text) ~= "string" then
        raw_error(raw_setmetatable({message = "json.decode expects a string, got " .. raw_type(text)}, ValueError), 0)
    end
    local pos = 1
    local len = #text
    local function fail(message)
        raw_error(raw_setmetatable({message = sformat("%s: invalid JSON at offset %d: %s", root, pos - 1,
            message)}, ValueError), 0)
    end
    local function skip()
        pos = sfind(text, "[^ \t\r\n]", pos) or (len + 1)
    end
    local value
    local function parse_string()
        pos = pos + 1
        local parts, n = {}, 0
        while true do
            -- JSON's control characters are U+0000..U+001F (DEL may stand raw in a string)
            local a = sfind(text, '["\\\0-\31]', pos)
            if a == nil then fail("unterminated string") end
            if a > pos then
                n = n + 1
                parts[n] = ssub(text, pos, a - 1)
            end
            local c = ssub(text, a, a)
            if c == '"' then
                pos = a + 1
                break
            elseif c == "\\" then
                local e = ssub(text, a + 1, a + 1)
                local simple = ({['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n",
                                 r = "\r", t = "\t"})[e]
                if simple then
                    n = n + 1
                    parts[n] = simple
                    pos = a + 2
                elseif e == "u" then
                    local hex = smatch(text, "^%x%x%x%x", a + 2)
                    if hex == nil then fail("bad \\u escape") end
                    local code = tonumber(hex, 16)
                    pos = a + 6
                    if code >= 0xD800 and code <= 0xDBFF then
                        local low = smatch(text, "^\\u(%x%x%x%x)", pos)
                        local lc = low and tonumber(low, 16)
                        if lc and lc >= 0xDC00 and lc <= 0xDFFF then
                            code = 0x10000 + (code - 0xD800) * 0x400 + (lc - 0xDC00)
                            pos = pos + 6
                        else
                            fail("lone surrogate in \\u escape")
                        end
                    end
                    n = n + 1
                    parts[n] = utf8_char(code)
                else
                    pos = a
                    fail("bad escape")
                end
            else
                pos = a
                fail("control character in string")
            end
        end
        local s = concat(parts, "", 1, n)
        if utf8_len(s) == nil then fail("string is not valid UTF-8") end
        return s
    end
    local function parse_number()
        local s = smatch(text, "^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
        if s == nil then fail("unexpected character " .. sformat("%q", ssub(text, pos, pos))) end
        local v = tonumber(s)
        if v == nil then fail("malformed number " .. s) end
        if not sfind(s, "[%.eE]") and mtype(v) ~= "integer" then
            fail("integer " .. s .. " does not fit in 64 bits")
        end
        pos = pos + #s
        return v
    end
    local depth = 0
    value = function()
        skip()
        local c = ssub(text, pos, pos)
        if c == "{" then
            depth = depth + 1
            if depth > 200 then fail("nested more than 200 levels deep") end
            pos = pos + 1
            local t = raw_setmetatable({}, OBJECT_MT)
            skip()
            if ssub(text, pos, pos) == "}" then
                pos = pos + 1
            else
                while true do
                    skip()
                    if ssub(text, pos, pos) ~= '"' then fail("expected a string key") end
                    local k = parse_string()
                    skip()
                    if ssub(text, pos, pos) ~= ":" then fail("expected ':'") end
                    pos = pos + 1
                    local v = value()
                    if v == nil then v = NULL end
                    t[k] = v
                    skip()
                    local d = ssub(text, pos, pos)
                    pos = pos + 1
                    if d == "}" then break end
                    if d ~= "," then pos = pos - 1; fail("expected ',' or '}'") end
                end
            end
            depth = depth - 1
            return t
        elseif c == "[" then
            depth = depth + 1
            if depth > 200 then fail("nested more than 200 levels deep") end
            pos = pos + 1
            local t = raw_setmetatable({}, ARRAY_MT)
            local n = 0
            skip()
            if ssub(text, pos, pos) == "]" then
                pos = pos + 1
            else
                while true do
                    local v = value()
                    if v == nil then v = NULL end
                    n = n + 1
                    t[n] = v
                    skip()
                    local d = ssub(text, pos, pos)
                    pos = pos + 1
                    if d == "]" then break end
                    if d ~= "," then pos = pos - 1; fail("expected ',' or ']'") end
                end
            end
            depth = depth - 1
            return t
        elseif c == '"' then
            return parse_string()
        elseif ssub(text, pos, pos + 3) == "true" then
            pos = pos + 4
            return true
        elseif ssub(text, pos, pos + 4) == "false" then
            pos = pos + 5
            return false
        elseif ssub(text, pos, pos + 3) == "null" then
            pos = pos + 4
            return nil
        elseif c == "" then
            fail("unexpected end of input")
        end
        return parse_number()
    end
    local result = value()
    skip()
    if pos <= len then fail("trailing characters") end
    return result
end

local function protect(fn, ...)
    local ok, result = raw_pcall(fn, ...)
    if ok then return result, nil end
    if debug_getmetatable(result) == ValueError then return nil, result.message end
    raw_error(result, 0)
end

---------------------------------------------------------------------------- errors
local NEVER_RETRYABLE = {INVALID = true, NOT_FOUND = true, LIMIT_EXCEEDED = true, CANCELED = true,
                         TERMINATED = true}
-- The methods live in their own table: with `Error.__index = Error`, `err.__index` would hand
-- user code the metatable itself (to add a __gc to every later error, say).
local ErrorMethods = {}
local Error = {__name = "flowctl.Error", __metatable = "flowctl.Error", __index = ErrorMethods}
function ErrorMethods:kind() return raw_rawget(self, "_kind") end
function ErrorMethods:message() return raw_rawget(self, "_message") end
function ErrorMethods:retryable() return raw_rawget(self, "_retryable") end
function ErrorMethods:details() return raw_rawget(self, "_details") end
function ErrorMethods:where() return raw_rawget(self, "_where") end
Error.__tostring = function(e)
    return plain_text(raw_rawget(e, "_kind")) .. ": " .. plain_text(raw_rawget(e, "_message"))
end

local function new_error(kind, message, retryable, details, where)
    if retryable == nil then retryable = not NEVER_RETRYABLE[kind] end
    return raw_setmetatable({_kind = kind, _message = message, _retryable = retryable and true or false,
                             _details = details, _where = where}, Error)
end

local errors = {}
for kind in raw_next, {NOT_FOUND = 1, INVALID = 1, INTERNAL = 1, TIMEOUT = 1, CANCELED = 1,
                       TERMINATED = 1, LIMIT_EXCEEDED = 1} do
    errors[kind] = kind
end
function errors.new(spec)
    local where = user_where(nil, 2)
    if raw_type(spec) == "string" then return new_error("INTERNAL", spec, nil, nil, where) end
    if raw_type(spec) ~= "table" then
        raw_error("errors.new: expected {kind = ..., message = ...} or a message string, got " .. raw_type(spec), 2)
    end
    local kind = spec.kind or "INTERNAL"
    if raw_type(kind) ~= "string" or not smatch(kind, "^[A-Z][A-Z0-9_]*$") then
        raw_error("errors.new: kind must be an UPPER_SNAKE_CASE string like \"NOT_FOUND\", got "
            .. sb_tostring(kind), 2)
    end
    local message = spec.message
    if message == nil then message = kind end
    if raw_type(message) ~= "string" then message = sb_tostring(message) end
    if spec.retryable ~= nil and raw_type(spec.retryable) ~= "boolean" then
        raw_error("errors.new: retryable must be true or false", 2)
    end
    return new_error(kind, message, spec.retryable, spec.details, where)
end
function errors.is(err, kind)
    return debug_getmetatable(err) == Error and (kind == nil or raw_rawget(err, "_kind") == kind)
end

local json = {null = NULL}
function json.encode(value)
    local text, err = protect(encode, value, "value")
    if text == nil then return nil, new_error("INVALID", "json.encode: " .. err, false, nil, user_where(nil, 2)) end
    return text
end
function json.decode(text)
    local value, err = protect(decode, text, "json.decode")
    if err ~= nil then return nil, new_error("INVALID", err, false, nil, user_where(nil, 2)) end
    return value
end
function json.array(t)
    if t ~= nil and raw_type(t) ~= "table" then raw_error("json.array: expected a table", 2) end
    return raw_setmetatable(t or {}, ARRAY_MT)
end
function json.object(t)
    if t ~= nil and raw_type(t) ~= "table" then raw_error("json.object: expected a table", 2) end
    return raw_setmetatable(t or {}, OBJECT_MT)
end

---------------------------------------------------------------------------- os
-- Time comes from the driver (workflow time in workflows), never from the machine's clock.
local function now_seconds()
    return now_ns // 1000000000
end

local function days_from_civil(y, m, d)
    y = m <= 2 and y - 1 or y
    local era = (y >= 0 and y or y - 399) // 400
    local yoe = y - era * 400
    local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
    local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468
end

local sb_os = {}
function sb_os.time(t)
    if t == nil then return now_seconds() end
    if raw_type(t) ~= "table" then raw_error("bad argument #1 to 'time' (table expected)", 2) end
    local function field(k, default)
        local v = t[k]
        if v == nil then
            if default == nil then raw_error("field '" .. k .. "' missing in date table", 3) end
            return default
        end
        return mfloor(v)
    end
    -- date tables are read as UTC: the machine's time zone must not change a replay
    local days = days_from_civil(field("year"), field("month"), field("day"))
    return days * 86400 + field("hour", 12) * 3600 + field("min", 0) * 60 + field("sec", 0)
end
function sb_os.clock()
    return (now_ns - (start_ns or now_ns)) / 1e9
end
function sb_os.date(fmt, t)
    fmt = fmt or "%c"
    if raw_type(fmt) ~= "string" then raw_error("bad argument #1 to 'date' (string expected)", 2) end
    if ssub(fmt, 1, 1) ~= "!" then fmt = "!" .. fmt end      -- always UTC
    return os_date(fmt, t or now_seconds())
end

---------------------------------------------------------------------------- C loops
-- The instruction hook only counts Lua VM instructions: a C function looping on its own is
-- invisible to it. Where a loop's length is not bounded by memory, it is bounded here.

-- string.rep("", n) copies zero bytes n times: a huge n would hang the worker.
local function sb_rep(s, n, sep)
    if s == "" and (sep == nil or sep == "") and raw_type(tonumber(n)) == "number" then return "" end
    return srep(s, n, sep)
end

-- table.move(a, 1, math.maxinteger, 1) walks the whole range in C, even over nils. Long
-- ranges are moved by Lua code instead, where the instruction budget applies.
local MOVE_IN_C = 1 << 20
local to_integer = math.tointeger
local function sb_move(a1, f, e, t, a2)
    local fi, ei, ti = to_integer(tonumber(f) or 0), to_integer(tonumber(e) or 0), to_integer(tonumber(t) or 0)
    -- small ranges, and argument errors (C checks them all before it loops), stay with Lua's own
    if fi == nil or ei == nil or ti == nil or ei - fi < MOVE_IN_C or ti > math.maxinteger - (ei - fi) then
        local ok, result = raw_pcall(table.move, a1, f, e, t, a2)
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

---------------------------------------------------------------------------- the allow-list
-- Each entry is safe because it cannot reach outside the runtime and behaves the same
-- on every run and replay; the ones marked * are flowctl's own versions.
local function copy(t, without)
    local c = {}
    for k, v in raw_next, t do
        if not (without and without[k]) then c[k] = v end
    end
    return c
end

local sb_string = copy(string, {dump = true})      -- no bytecode out
sb_string.format = sb_format                         -- * no %p, no addresses via %s
for _, fname in ipairs({"find", "match", "gmatch", "gsub"}) do
    sb_string[fname] = guarded(fname, string[fname])  -- * no catastrophic backtracking
end
sb_string.rep = sb_rep                               -- * string.rep("", huge) cannot hang
local sb_table = copy(table)
sb_table.sort = sb_sort                              -- * stable, no random pivot
sb_table.move = sb_move                              -- * long ranges count as instructions
local sb_math = copy(math, {randomseed = true})      -- seeded by flowctl from the run's random
local sb_coroutine = {
    create = sb_create, resume = sb_resume, wrap = sb_wrap,     -- * commands pass through
    yield = raw_yield, status = raw_status, running = raw_running, close = sb_close,   -- *
    isyieldable = raw_isyieldable,
}
if config.spawn then sb_coroutine.spawn = sb_spawn end

env.assert = assert
env.error = raw_error
env.getmetatable = raw_getmetatable                  -- honours __metatable
env.ipairs = ipairs
env.next = sb_next                                   -- * stable order
env.pairs = sb_pairs                                 -- * stable order
env.pcall = sb_pcall                                 -- * cannot swallow limit errors
env.xpcall = sb_xpcall                               -- *
env.rawequal = raw_rawequal
env.rawget = raw_rawget
env.rawlen = raw_rawlen
env.rawset = sb_rawset                               -- * no __gc/__mode on a metatable in use
env.select = raw_select
env.setmetatable = sb_setmetatable                   -- * no __gc / __mode
env.tonumber = tonumber
env.tostring = sb_tostring                           -- * no addresses
env.type = raw_type
env.load = sb_load                                   -- * text chunks only, sandbox env
env.require = sb_require                             -- * listed modules and imports only
env.collectgarbage = function() return 0 end         -- * a stub: GC timing is not the program's
env.print = function() end                           -- replaced by the log shim
env._VERSION = _VERSION
env.string = sb_string
env.table = sb_table
env.math = sb_math
env.utf8 = copy(utf8)
env.coroutine = sb_coroutine
env.os = sb_os                                       -- * time/clock/date from the driver's clock
env._G = env
-- json and errors are built in, but like every module only there when the entry lists them
local builtin = {json = json, errors = errors}

-- Strings' methods ("x"):upper() use the sandbox's string table, not the real one.
debug_getmetatable("").__index = sb_string
math.randomseed(config.seed)

---------------------------------------------------------------------------- control (Python only)
local control = {}

control.env = env
control.yield_command = yield_command
control.tostring = sb_tostring

function control.configure(entry_owner, names)
    owner = entry_owner
    module_names = names
end

function control.add_module(name, value, as_global)
    if value == nil then value = builtin[name] end
    if value == nil then raw_error("flowctl: no built-in module " .. raw_tostring(name), 0) end
    modules[name] = value
    if as_global then env[name] = value end
end

function control.add_library(alias, source, chunkname)
    libraries[alias] = {source = source, chunkname = chunkname}
end

function control.compile(source, chunkname)
    local fn, err = raw_load(source, chunkname, "t", env)
    return fn, err
end

function control.begin_task(instructions)
    ticks = 0
    budget_ticks = instructions // TICK
end

function control.set_now(ns)
    now_ns = ns
    if start_ns == nil then start_ns = ns end
end

-- Driver threads live here, by number: lupa would hand Python a new coroutine as a function.
local threads, next_thread = {}, 0

function control.start(fn)
    next_thread = next_thread + 1
    local co = install_hook(raw_create(fn))
    threads[next_thread] = co
    driver_owned[co] = true
    return next_thread
end

-- The entry point of user code: run the chunk (once), then call its exported method.
function control.entrypoint(chunk, method, chunkname)
    return function(...)
        local module = chunk()
        local fn = raw_type(module) == "table" and raw_rawget(module, method) or nil
        if raw_type(fn) ~= "function" then
            raw_error(sformat("%s does not export a function '%s': end the file with `return { %s = %s }`",
                chunkname, method, method, method), 0)
        end
        return fn(...)
    end
end

local function error_text(err)
    if raw_type(err) == "string" then return err end
    if debug_getmetatable(err) == Error then
        return plain_text(raw_rawget(err, "_kind")) .. ": " .. plain_text(raw_rawget(err, "_message"))
    end
    if raw_type(err) == "number" then return raw_tostring(err) end
    return "(error object is a " .. raw_type(err) .. " value)"
end

-- step(id, ...) resumes a driver thread once: "done", n, results... | "command", cmd |
-- "yield", nil | "limit", name, where | "error", value, traceback, where.
function control.step(id, ...)
    local co = threads[id]
    if co == nil then raw_error("flowctl: no driver thread " .. raw_tostring(id), 0) end
    local r = pack(raw_resume(co, ...))
    if raw_status(co) == "dead" then
        threads[id] = nil
        driver_owned[co] = nil
    end
    if limit_hit ~= nil or (not r[1] and is_fatal(r[2])) then
        local hit = limit_hit
        return "limit", hit[1], (hit[2] ~= "?" and hit[2]) or user_where(co) or "?"
    end
    if r[1] then
        if raw_status(co) == "dead" then return "done", r.n - 1, unpack(r, 2, r.n) end
        if r[2] == CMD then return "command", r[3] end
        return "yield", nil
    end
    local err = r[2]
    return "error", err, traceback(co, error_text(err), 0), user_where(co) or "?"
end

-- limit_where(id): where a limit stopped driver thread `id` (for a memory error that escaped step).
function control.limit_where(id)
    if limit_hit ~= nil and limit_hit[2] ~= "?" then return limit_hit[2] end
    local co = id and threads[id]
    return (co and user_where(co)) or "?"
end

function control.export(value, root)
    return protect(encode, value, root)
end

function control.import(text, root)
    return protect(decode, text, root)
end

function control.new_error(kind, message, retryable, details, where)
    return new_error(kind, message, retryable, details, where)
end

-- Fields of an error object as plain strings and a boolean: user code can rawset anything
-- into an error object, and Python must never str() a Lua table (see plain_text).
function control.error_fields(err)
    if debug_getmetatable(err) ~= Error then return nil end
    local kind, where = raw_rawget(err, "_kind"), raw_rawget(err, "_where")
    if raw_type(kind) ~= "string" then kind = "INTERNAL" end
    if where ~= nil then where = plain_text(where) end
    return kind, plain_text(raw_rawget(err, "_message")), raw_rawget(err, "_retryable") == true,
        raw_rawget(err, "_details"), where
end

function control.type(v)
    return raw_type(v)
end

-- where(level): "file.lua:12" of the user code `level` frames above the caller (log lines).
function control.where(level)
    return user_where(nil, level + 1) or frame_where(getinfo(level + 1, "Sl")) or "?"
end

return control

-- JSON, the form of every value crossing to Python (docs/sandbox.md, Values): json.null, the array and
-- object marks, and the encoder. Errors name the path of the bad value (input.items[3].price).

NULL = raw_setmetatable({}, {
    __name = "json.null",
    __tostring = function() return "null" end,
    __newindex = function() raw_error("json.null is a constant", 2) end,
    __metatable = false,
})
-- getmetatable() shows users a name, not these tables: nobody can add a __gc to them.
ARRAY_MT = {__name = "json.array", __metatable = "json.array"}
OBJECT_MT = {__name = "json.object", __metatable = "json.object"}

-- raised (as a table) by encode/decode and caught in this file; a table with this metatable
-- also stands for a value that cannot cross (90_control.lua): encoding it fails with its message
ValueError = {}

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

local function rfc3339(ns)
    local secs, frac = ns // 1000000000, ns % 1000000000
    local ok, text = raw_pcall(os_date, "!%Y-%m-%dT%H:%M:%S", secs)
    if not ok then
        if is_fatal(text) then raw_error(text, 0) end
        return nil
    end
    if frac ~= 0 then text = text .. sgsub(sformat(".%09d", frac), "0+$", "") end
    return text .. "Z"
end

-- walk(value, root, scalar, open, close, key, item): the one walk over a value that crosses to
-- Python, for encode (JSON text) and flatten (ops and values): every check and error, with its
-- path (input.items[3].price), is here. It calls scalar(v) with NULL, a boolean, an integer, a
-- finite float or a UTF-8 string; open(is_object) / close(is_object) around a table's items;
-- item(i) before the i-th item of an array and key(k, i) before the i-th of an object.
local function walk(value, root, scalar, open, close, key, item)
    local stack, depth = {}, 0
    local active = {}
    local function fail(message)
        raw_error(raw_setmetatable({message = path_string(root, stack, depth) .. ": " .. message}, ValueError), 0)
    end
    local put
    -- t[k], one level deeper in the path
    local function put_item(t, k)
        depth = depth + 1
        stack[depth] = k
        put(raw_rawget(t, k))
        depth = depth - 1
    end
    local function check_string(s)
        charge(#s * 4)      -- C reads it twice, gsub ~10 ns a byte (10_limits.lua, 65_c_loop_guards.lua)
        if utf8_len(s) == nil then
            fail("string is not valid UTF-8 (binary data must be encoded, e.g. as hex, to cross Temporal)")
        end
        return s
    end
    local function put_table(t, mt)
        if depth >= 100 then fail("tables nested more than 100 levels deep") end
        if active[t] then fail("table refers to itself (a cycle); it cannot be sent") end
        local name = mt and type_names[mt]
        if name == "flowctl.Duration" or name == "flowctl.Time" then
            -- this runs outside any instruction budget: never compute with a field user code
            -- could have replaced (a table whose __idiv loops, or returns text to splice in)
            local ns = raw_rawget(t, "ns")
            if mtype(ns) ~= "integer" then
                fail("a " .. name .. " whose ns was changed (it is a " .. raw_type(ns) .. ", not an integer) "
                    .. "cannot be sent")
            end
            if name == "flowctl.Duration" then scalar(ns // 1000000); return end
            local text = rfc3339(ns)
            if text == nil then fail("a flowctl.Time out of range (year beyond 9999?) cannot be sent") end
            scalar(check_string(text))
            return
        end
        if raw_rawequal(mt, ValueError) then fail(raw_rawget(t, "message")) end
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
            local is_object = raw_rawequal(mt, OBJECT_MT)
            open(is_object)
            close(is_object)
        elseif not has_other then
            if max_index ~= count then
                fail("array has holes (index " .. max_index .. " but only " .. count .. " items); "
                    .. "fill them with json.null or use string keys")
            end
            open(false)
            for i = 1, count do
                item(i)
                put_item(t, i)
            end
            close(false)
        else
            local keys, nkeys = sorted_keys(t)
            open(true)
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
                key(check_string(k), i)
                put_item(t, k)
            end
            close(true)
        end
        active[t] = nil
    end
    put = function(v)
        local t = raw_type(v)
        if v == nil or raw_rawequal(v, NULL) then
            scalar(NULL)
        elseif t == "boolean" then
            scalar(v)
        elseif t == "number" then
            if mtype(v) ~= "integer" and (v ~= v or v == mhuge or v == -mhuge) then
                fail("number " .. raw_tostring(v) .. " cannot be sent (JSON has no NaN or infinity)")
            end
            scalar(v)
        elseif t == "string" then
            scalar(check_string(v))
        elseif t == "table" then
            put_table(v, debug_getmetatable(v))
        else
            fail("a " .. t .. " value cannot be sent (only nil, booleans, numbers, strings and tables can)")
        end
    end
    put(value)
end

-- encode(value, root) -> JSON text; errors name the path (input.items[3].price). Only json.encode
-- writes JSON text (values cross to Python flattened): built, below the `--- on demand ---` line,
-- the first time a run calls it.
function encode(value, root)
    return build_part("50_json_encode", walk, raw_type, raw_tonumber, raw_ipairs, mtype, sformat, sgsub, sbyte,
        sfind, concat)(value, root)
end

-- flatten(value, root) -> ops, values: the value as Python rebuilds it (runner/sandbox/values.py,
-- rebuilt), the way import's input is flattened the other way: one character of ops per step,
-- "{" / "[" an object / array, "}" its end, "k" the next of values as the key of the next
-- item, "v" the next of values, "n" null. No JSON text is written for Python to parse.
local function flatten(value, root)
    local ops, n, values, nv = {}, 0, {}, 0
    local function scalar(v)
        n = n + 1
        if raw_rawequal(v, NULL) then
            ops[n] = "n"
        else
            ops[n] = "v"
            nv = nv + 1
            values[nv] = v
        end
    end
    walk(value, root, scalar,
        function(is_object) n = n + 1; ops[n] = is_object and "{" or "[" end,
        function() n = n + 1; ops[n] = "}" end,
        function(k)
            n = n + 1
            ops[n] = "k"
            nv = nv + 1
            values[nv] = k
        end,
        function() end)
    return concat(ops, "", 1, n), values, nv
end

function protect(fn, ...)
    local ok, result = raw_pcall(fn, ...)
    if ok then return result, nil end
    if raw_rawequal(debug_getmetatable(result), ValueError) then return nil, raw_rawget(result, "message") end
    raw_error(result, 0)
end

-- export(value, root): ops, values and their count for Python (flatten), or nil and what is wrong
-- with the value
export = function(value, root)
    local ok, ops, values, count = raw_pcall(flatten, value, root)
    if ok then return ops, values, count end
    if raw_rawequal(debug_getmetatable(ops), ValueError) then return nil, raw_rawget(ops, "message"), 0 end
    raw_error(ops, 0)
end

--- on demand ---
-- json.encode's JSON text (encode, above): what it uses comes from the prelude, as arguments.
local walk, raw_type, raw_tonumber, raw_ipairs, mtype, sformat, sgsub, sbyte, sfind, concat = ...

local ESCAPES = {['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n",
                 ["\r"] = "\\r", ["\t"] = "\\t"}
local function escape_char(c)
    return ESCAPES[c] or sformat("\\u%04x", sbyte(c))
end

local function format_float(v)
    for _, f in raw_ipairs({"%.15g", "%.16g", "%.17g"}) do
        local s = sformat(f, v)
        if raw_tonumber(s) == v then
            if not sfind(s, "[%.eE]") then s = s .. ".0" end
            return s
        end
    end
    return sformat("%.17g", v)
end

-- encode(value, root) -> JSON text
return function(value, root)
    local buf, n = {}, 0
    local function emit(s)
        n = n + 1
        buf[n] = s
    end
    local function scalar(v)
        local t = raw_type(v)
        if t == "string" then
            emit('"' .. sgsub(v, '[%c"\\]', escape_char) .. '"')
        elseif t == "number" then
            emit(mtype(v) == "integer" and sformat("%d", v) or format_float(v))
        elseif t == "boolean" then
            emit(v and "true" or "false")
        else
            emit("null")
        end
    end
    walk(value, root, scalar,
        function(is_object) emit(is_object and "{" or "[") end,
        function(is_object) emit(is_object and "}" or "]") end,
        function(k, i)
            if i > 1 then emit(",") end
            emit('"' .. sgsub(k, '[%c"\\]', escape_char) .. '":')
        end,
        function(i) if i > 1 then emit(",") end end)
    return concat(buf, "", 1, n)
end

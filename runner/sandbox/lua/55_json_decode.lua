-- JSON, second half: the json module user code gets when it lists `json`, and how Python's
-- values become Lua's (import).

-- decode(text, root) -> value; arrays and objects come back marked (json.array / json.object).
-- Built (below the `--- on demand ---` line) the first time a run calls json.decode.
local function decode(text, root)
    return build_part("55_json_decode", raw_type, raw_error, raw_setmetatable, raw_tonumber, ValueError,
        OBJECT_MT, ARRAY_MT, NULL, sfind, ssub, smatch, sformat, concat, utf8_char, utf8_len, mtype)(text, root)
end

json = {null = NULL}
function json.encode(value)
    local text, err = protect(encode, value, "value")
    if text == nil then return nil, new_error("INVALID", "json.encode: " .. err, false, nil, user_where(nil, 2)) end
    return text
end
function json.decode(text)
    if raw_type(text) == "string" then charge(#text * 4) end    -- C scans each string ~10 ns a byte
    local value, err = protect(decode, text, "json.decode")
    if err ~= nil then return nil, new_error("INVALID", err, false, nil, user_where(nil, 2)) end
    return value
end
-- json.array(t) / json.object(t): mark t (or a new table) so that it is sent as [] / {} when empty
-- (docs/lua-api.md, Empty tables). A marked table, decoded ones included, may be marked again;
-- a table with a metatable of its own may not (marking would silently drop that metatable).
local debug_setmetatable = debug.setmetatable
local function mark(t, mt, name)
    if t == nil then return raw_setmetatable({}, mt) end
    if raw_type(t) ~= "table" then
        raw_error(name .. ": expected a table (or nothing, for a new one), got a " .. raw_type(t), 2)
    end
    if raw_rawequal(t, NULL) then
        raw_error(name .. ": json.null is JSON null, not a table: write " .. name .. "() for an empty one", 2)
    end
    local old = debug_getmetatable(t)
    if old ~= nil and not raw_rawequal(old, ARRAY_MT) and not raw_rawequal(old, OBJECT_MT) then
        local what = type_names[old]
        raw_error(name .. ": " .. (what and "a " .. what or "a table with a metatable") .. " cannot be marked "
            .. "(only a plain table can): copy its fields into a new table", 2)
    end
    return debug_setmetatable(t, mt)
end
function json.array(t)
    return mark(t, ARRAY_MT, "json.array")
end
function json.object(t)
    return mark(t, OBJECT_MT, "json.object")
end

-- import(ops, values): the value Python flattened (runner/sandbox/values.py, flattened): one
-- character of `ops` per step, "{" / "[" an object / array, "}" its end, "k" the next of
-- `values` as the key of the next item, "v" the next of `values`, "n" json.null (nil at the
-- top). Python checked every value (UTF-8 strings, 64-bit integers, finite floats, depth), so
-- this only builds: no JSON text crosses, and the decoder is built only when user code calls
-- json.decode.
local B_OBJECT, B_ARRAY, B_END, B_KEY, B_VALUE = sbyte("{[}kv", 1, 5)
import = function(ops, values)
    local parents, keys, depth, vi = {}, {}, 0, 0
    local t, k, result
    for p = 1, #ops do
        local op, v = sbyte(ops, p), NULL
        if op == B_KEY then
            vi = vi + 1
            k = values[vi]
        else
            if op == B_VALUE then
                vi = vi + 1
                v = values[vi]
            elseif op == B_OBJECT or op == B_ARRAY then
                depth = depth + 1
                parents[depth], keys[depth] = t, k
                t, k = raw_setmetatable({}, op == B_OBJECT and OBJECT_MT or ARRAY_MT), nil
            elseif op == B_END then
                v = t
                t, k = parents[depth], keys[depth]
                parents[depth] = nil
                depth = depth - 1
            end
            if op ~= B_OBJECT and op ~= B_ARRAY then
                if t == nil then
                    result = v
                elseif k == nil then
                    t[#t + 1] = v
                else
                    t[k] = v
                end
            end
        end
    end
    if raw_rawequal(result, NULL) then return nil end
    return result
end

--- on demand ---
-- The decoder, json.decode's (decode, above): what it uses comes from the prelude, as arguments.
local raw_type, raw_error, raw_setmetatable, raw_tonumber, ValueError, OBJECT_MT, ARRAY_MT, NULL,
    sfind, ssub, smatch, sformat, concat, utf8_char, utf8_len, mtype = ...

-- decode(text, root) -> value; arrays and objects come back marked (json.array / json.object).
return function(text, root)
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
                    local code = raw_tonumber(hex, 16)
                    pos = a + 6
                    if code >= 0xD800 and code <= 0xDBFF then
                        local low = smatch(text, "^\\u(%x%x%x%x)", pos)
                        local lc = low and raw_tonumber(low, 16)
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
        local v = raw_tonumber(s)
        if v == nil then fail("malformed number " .. s) end
        if not sfind(s, "[%.eE]") and mtype(v) ~= "integer" then
            fail("integer " .. s .. " does not fit in 64 bits")
        end
        pos = pos + #s
        return v
    end
    -- An object ("{", closed by "}") or an array ("[", closed by "]"), from its opening character on.
    local depth = 0
    local function container(close)
        local is_object = close == "}"
        depth = depth + 1
        if depth > 200 then fail("nested more than 200 levels deep") end
        pos = pos + 1
        local t = raw_setmetatable({}, is_object and OBJECT_MT or ARRAY_MT)
        skip()
        if ssub(text, pos, pos) == close then
            pos = pos + 1
        else
            local n = 0
            while true do
                local k
                if is_object then
                    skip()
                    if ssub(text, pos, pos) ~= '"' then fail("expected a string key") end
                    k = parse_string()
                    skip()
                    if ssub(text, pos, pos) ~= ":" then fail("expected ':'") end
                    pos = pos + 1
                else
                    n = n + 1
                    k = n
                end
                local v = value()
                if v == nil then v = NULL end
                t[k] = v
                skip()
                local d = ssub(text, pos, pos)
                pos = pos + 1
                if d == close then break end
                if d ~= "," then pos = pos - 1; fail("expected ',' or '" .. close .. "'") end
            end
        end
        depth = depth - 1
        return t
    end
    value = function()
        skip()
        local c = ssub(text, pos, pos)
        if c == "{" then
            return container("}")
        elseif c == "[" then
            return container("]")
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

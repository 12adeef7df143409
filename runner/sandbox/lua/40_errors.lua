-- Errors: the objects errors.new makes, and the form every failure from Python takes in Lua
-- (err:kind(), err:message(), err:retryable(), err:details(), err:where()).

local NEVER_RETRYABLE = {INVALID = true, NOT_FOUND = true, LIMIT_EXCEEDED = true, CANCELED = true,
                         TERMINATED = true}
local ErrorMethods, Error = class("flowctl.Error")
function ErrorMethods:kind() return raw_rawget(self, "_kind") end
function ErrorMethods:message() return raw_rawget(self, "_message") end
function ErrorMethods:retryable() return raw_rawget(self, "_retryable") end
function ErrorMethods:details() return raw_rawget(self, "_details") end
function ErrorMethods:where() return raw_rawget(self, "_where") end
Error.__tostring = function(e)
    return plain_text(raw_rawget(e, "_kind")) .. ": " .. plain_text(raw_rawget(e, "_message"))
end

function new_error(kind, message, retryable, details, where)
    if retryable == nil then retryable = not NEVER_RETRYABLE[kind] end
    return raw_setmetatable({_kind = kind, _message = message, _retryable = retryable and true or false,
                             _details = details, _where = where}, Error)
end

errors = {}
for kind in raw_next, {NOT_FOUND = 1, INVALID = 1, INTERNAL = 1, TIMEOUT = 1, CANCELED = 1,
                       TERMINATED = 1, LIMIT_EXCEEDED = 1} do
    errors[kind] = kind
end
-- errors.new(spec): built (at the end of this file) the first time a run calls it; a tail call,
-- so the errors it raises at level 2, and the place it records, are the caller's
local errors_new
function errors.new(spec)
    errors_new = errors_new or build_part("40_errors", raw_error, raw_type, smatch, sb_tostring, user_where,
        new_error)
    return errors_new(spec)
end
function errors.is(err, kind)
    return raw_rawequal(debug_getmetatable(err), Error) and (kind == nil or raw_rawget(err, "_kind") == kind)
end

-- valid_text(s): s with each byte that is not part of valid UTF-8 replaced by U+FFFD. A Lua
-- string may hold any bytes; text for Python (messages, tracebacks) must decode.
local function valid_text(s)
    if utf8_len(s) then return s end
    local parts, n, from = {}, 0, 1
    while true do
        local ok, bad = utf8_len(s, from)
        if ok then break end
        parts[n + 1], parts[n + 2] = ssub(s, from, bad - 1), "\u{FFFD}"
        n, from = n + 2, bad + 1
    end
    parts[n + 1] = ssub(s, from)
    return concat(parts, "", 1, n + 1)
end

-- error_text(err): the first line of a traceback for any error value, as valid UTF-8 text,
-- without running metamethods
function error_text(err)
    if raw_type(err) == "string" then return valid_text(err) end
    if raw_rawequal(debug_getmetatable(err), Error) then
        return valid_text(plain_text(raw_rawget(err, "_kind")) .. ": " .. plain_text(raw_rawget(err, "_message")))
    end
    if raw_type(err) == "number" then return raw_tostring(err) end
    return "(error object is a " .. raw_type(err) .. " value)"
end

-- Fields of an error object as plain UTF-8 strings and a boolean: user code can rawset
-- anything into an error object, and Python must never str() a Lua table (see plain_text).
function error_fields(err)
    if not raw_rawequal(debug_getmetatable(err), Error) then return nil end
    local kind, where = raw_rawget(err, "_kind"), raw_rawget(err, "_where")
    kind = raw_type(kind) == "string" and valid_text(kind) or "INTERNAL"
    if where ~= nil then where = valid_text(plain_text(where)) end
    -- details go back boxed: a string of them that is not UTF-8 must reach the exporter (an
    -- INVALID naming the path), not lupa's decoder
    return kind, valid_text(plain_text(raw_rawget(err, "_message"))), raw_rawget(err, "_retryable") == true,
        {raw_rawget(err, "_details")}, where
end

--- on demand ---
-- errors.new (above): what it uses comes from the prelude, as arguments.
local raw_error, raw_type, smatch, sb_tostring, user_where, new_error = ...

return function(spec)
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

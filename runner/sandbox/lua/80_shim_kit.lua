-- The shim kit: what every flowctl shim chunk (runner/shims/*.lua, runner/testing/test.lua)
-- receives as its first argument. A shim takes what it needs from it into locals when it
-- loads and never hands any of it to user code: Lua's own setmetatable gives any table a
-- flowctl type (and a __gc), yield_command sends the driver any command.
--
-- The trust boundary (docs/sandbox.md): shims run in the sandbox's environment, whose
-- globals (`type`, `pairs`, `table.pack`...) user code can replace. So a shim looks up no
-- global at all: every builtin it uses comes from here, as it was before any user code ran,
-- and every field of a flowctl object it passes on is read raw and checked (`field`), since
-- user code can rawset anything into an object. Python checks every command field again.

local mabs = math.abs

-- answer(level, ok, ...): the driver's reply to a command; a refusal (ok false) is raised at `level`.
local function answer(level, ok, ...)
    if not ok then raw_error((...), level) end
    return ...
end

-- call(cmd, level): hand cmd to the driver and return the values it answers with. A refusal
-- is raised as if the shim function calling `call` did error(message, level): level 2, the
-- default, is the line that called that function. Mind tail calls: `return call(cmd)` drops
-- the shim function's frame, so the level counts from its caller instead; `return (call(cmd))`
-- (one value) is not a tail call.
local function call(cmd, level)
    -- yield_command(cmd) inlined, so a parked thread's stack has one frame less; `answer`
    -- takes this frame (a tail call), so level + 1 counts from the shim function
    return answer((level or 2) + 1, raw_yield(CMD, cmd))
end

-- where(level): "file.lua:12" of the user code `level` frames above the caller (log lines).
local function where(level)
    return user_where(nil, level + 1) or frame_where(getinfo(level + 1, "Sl")) or "?"
end

-- field(obj, key, want): the field `key` of one of flowctl's objects, read raw, if it still
-- holds a `want` ("string", "integer", "boolean", "table", "function"); nil if it does not.
local function field(obj, key, want)
    local v = raw_rawget(obj, key)
    if (want == "integer" and mtype(v) or raw_type(v)) == want then return v end
    return nil
end

-- is_a(v, mt): v is one of flowctl's objects of the type whose private metatable is mt. By
-- identity, raw: `getmetatable(v) == mt` would run an __eq that user code can give v's metatable.
local function is_a(v, mt)
    return raw_rawequal(debug_getmetatable(v), mt)
end

-- describe(v): what a value is, for error messages: its type, or its flowctl type name
-- (never its text: that would run its __tostring, and never an address).
local function describe(v)
    local mt = debug_getmetatable(v)
    local name = mt ~= nil and type_names[mt]
    if name then return "a " .. name end
    local t = raw_type(v)
    if t == "nil" then return "nil" end
    if t == "number" then return mtype(v) == "integer" and "an integer" or "a float" end
    return "a " .. t
end

-- later(build, methods, mt, events): the rest of a class, built on demand (a shim's part below
-- its `--- on demand ---` line, 45_on_demand.lua): build() puts the methods in `methods` and
-- the metamethods listed in `events` in `mt`. Until then, looking up a method `methods` lacks
-- builds them, and each listed event is a stand-in that builds them and calls the real one.
-- (methods and mt are the class's own, private tables: user code cannot tell the difference.)
local function later(build, methods, mt, events)
    raw_setmetatable(methods, {__index = function(t, key)
        build()
        raw_setmetatable(t, nil)
        return raw_rawget(t, key)
    end})
    for _, event in raw_ipairs(events) do
        raw_rawset(mt, event, function(...)
            build()
            return raw_rawget(mt, event)(...)
        end)
    end
end

kit = {
    yield_command = yield_command,
    call = call,
    class = class,                      -- methods, metatable = class("flowctl.Name")
    later = later,                      -- the rest of a class built on demand
    -- Lua's own: they see past __metatable, where user code's getmetatable shows a name only
    setmetatable = raw_setmetatable,
    getmetatable = debug_getmetatable,
    type_names = type_names,            -- metatable -> "flowctl.Duration"..., for every type defined
    where = where,
    field = field,
    is_a = is_a,
    describe = describe,
    tostring = sb_tostring,             -- the address-free tostring user code has
    valid_text = error_text,            -- a string with the bytes that are not UTF-8 replaced (U+FFFD)
    -- builtins, as they were before user code ran (`pairs` is the sandbox's sorted one)
    type = raw_type, error = raw_error, rawget = raw_rawget, pairs = sb_pairs, ipairs = raw_ipairs,
    pack = pack, unpack = unpack, concat = concat,
    math_type = mtype, floor = mfloor, abs = mabs,
    format = sformat, gsub = sgsub, byte = sbyte,
    os_date = os_date,                  -- the C function: give it "!..." formats (UTC)
}

-- The shim kit: what every flowctl shim chunk (runner/shims/*.lua, runner/testing/test.lua)
-- receives as its first argument. A shim takes what it needs from it into locals when it
-- loads, before any user code runs, and never hands any of it to user code: Lua's own
-- setmetatable gives any table a flowctl type (and a __gc), yield_command sends the driver
-- any command.

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

kit = {
    yield_command = yield_command,
    call = call,
    class = class,                      -- methods, metatable = class("flowctl.Name")
    -- Lua's own: they see past __metatable, where user code's getmetatable shows a name only
    setmetatable = raw_setmetatable,
    getmetatable = debug_getmetatable,
    type_names = type_names,            -- metatable -> "flowctl.Duration"..., for every type defined
    where = where,
    tostring = sb_tostring,             -- the address-free tostring user code has
}

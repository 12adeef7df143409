-- Coroutines and commands. A shim hands the driver a command with yield_command(cmd): the
-- whole stack of Lua coroutines up to a thread the driver started yields (CMD, cmd); the
-- driver answers and resumes it. User coroutines are plain Lua coroutines, except that a
-- command yielded inside one is passed up to the driver and its answer passed back down:
-- shims work at any depth.

-- Sentinel first value of every command yield: user code can neither see nor forge it.
CMD = raw_setmetatable({}, {__name = "flowctl.command", __metatable = false})

function yield_command(cmd)
    return raw_yield(CMD, cmd)
end

function sb_create(f)
    if raw_type(f) ~= "function" then
        raw_error("bad argument #1 to 'create' (function expected, got " .. raw_type(f) .. ")", 2)
    end
    return install_hook(raw_create(f))
end

-- Threads only the driver may resume: its own (main, spawned, handlers) and coroutines
-- parked on a command. Resuming one from Lua would hand it a forged command reply.
driver_owned = {}

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
    if ok and raw_rawequal(first, CMD) and raw_status(co) == "suspended" then
        driver_owned[co] = true
        return forward_answer(co, raw_yield(CMD, ...))   -- tail calls: no stack growth
    end
    if not ok and is_fatal(first) then raw_error(LIMIT_ERROR, 0) end
    return ok, first, ...
end

function sb_resume(co, ...)
    if raw_type(co) ~= "thread" then
        raw_error("bad argument #1 to 'resume' (coroutine expected, got " .. raw_type(co) .. ")", 2)
    end
    check_not_driver_owned(co, "resume")
    return forward(co, raw_resume(co, ...))
end

function sb_close(co)
    if raw_type(co) == "thread" then check_not_driver_owned(co, "close") end
    return raw_close(co)
end

local function wrap_result(ok, ...)
    if not ok then raw_error((...), 0) end
    return ...
end

function sb_wrap(f)
    local co = sb_create(f)
    return function(...)
        return wrap_result(sb_resume(co, ...))
    end
end

function sb_spawn(fn)
    if raw_type(fn) ~= "function" then
        raw_error("coroutine.spawn: expected a function, got " .. raw_type(fn), 2)
    end
    local ok, err = yield_command({op = "coroutine.spawn", fn = fn})
    if not ok then raw_error(err, 2) end
end

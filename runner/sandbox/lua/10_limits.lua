-- Limits: the instruction budget, and what ends a run once a limit (instructions, memory,
-- stack) is hit, even when user code catches the error with pcall.

-- The instruction budget is counted by a count hook every TICK VM instructions. Hooks
-- are per Lua thread, so every coroutine the sandbox creates gets it installed.
local TICK = 1000
local budget_ticks, ticks = 0, 0
LIMIT_ERROR = raw_setmetatable({}, {
    __name = "flowctl.LimitExceeded",
    __tostring = function() return "flowctl: sandbox limit exceeded" end,
})

function frame_where(info)
    if info == nil then return nil end
    return info.short_src .. ":" .. (info.currentline or 0)
end

-- The innermost frame of user code (chunks named "@file.lua"; flowctl's own are "=name").
function user_where(co, from)
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

function install_hook(co)
    sethook(co, hook, "", TICK)
    return co
end

-- A limit error must end the run even when user code catches it with pcall: every
-- catching function re-raises it.
function is_fatal(err)
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

function sb_pcall(f, ...)
    return rethrow_fatal(raw_pcall(f, ...))
end

function sb_xpcall(f, handler, ...)
    return rethrow_fatal(raw_xpcall(f, function(err)
        if is_fatal(err) then return err end
        return handler(err)
    end, ...))
end

-- begin_task(instructions): a fresh budget (once per workflow task, once per activity call)
function begin_task(instructions)
    ticks = 0
    budget_ticks = instructions // TICK
end


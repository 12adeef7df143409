-- Limits: the instruction budget, and what ends a run once a limit (instructions, memory,
-- stack) is hit. A limit cannot be caught: every place where Lua catches an error (pcall,
-- xpcall, coroutine.resume/wrap/close, load's reader) re-raises it (__close methods, the one
-- other place, are refused: 25_metatables.lua), and user code cannot raise a text that reads
-- like one (error, assert) to forge a limit.

-- The budget counts VM instructions: a count hook adds TICK every TICK instructions (hooks
-- are per Lua thread, so every coroutine the sandbox creates gets it installed), and C
-- functions whose work grows with their arguments charge it (charge(n), 45/65_*.lua).
-- It is per workflow task and per activity attempt (the driver calls begin_task).
local raw_select = select
local TICK = 1000
-- What a task used is ticked + charged, kept apart so that each has one writer: the hook may
-- fire between charge's read of a total and its write, and must not undo, or be undone by, it.
local ticked, charged, budget = 0, 0, 0
LIMIT_ERROR = raw_setmetatable({}, {
    __name = "flowctl.LimitExceeded",
    __tostring = function() return "flowctl: sandbox limit exceeded" end,
    __metatable = false,
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

-- the innermost frame that is not flowctl's own (stripped) code: a loaded chunk... (as far
-- as user_where looks: getinfo walks the stack from the top, a deep one must not be walked
-- to the bottom frame by frame)
local function outer_where(level)
    for at = level + 1, 200 do
        local info = getinfo(at, "Sl")
        if info == nil then return nil end
        if info.source ~= "=?" and info.what ~= "C" then return frame_where(info) end
    end
    return nil
end

local function exceeded(level)
    if limit_hit == nil then
        limit_hit = {"instructions", user_where(nil, level + 1) or outer_where(level + 1) or "?"}
    end
    raw_error(LIMIT_ERROR, 0)
end

local function hook()
    ticked = ticked + TICK
    if ticked + charged > budget then exceeded(2) end
end

function install_hook(co)
    sethook(co, hook, "", TICK)
    return co
end

-- charge(n): n instructions' worth of work a C function does (or is about to do) in one call.
function charge(n)
    if n > budget - ticked - charged then
        charged = budget + 1 - ticked
        exceeded(2)
    end
    if n > 0 then charged = charged + n end
end

-- budget_left(): instructions this task may still use
function budget_left()
    return budget - ticked - charged
end

-- A thread with no count hook, kept for the next unmetered call: `serve` runs each function it
-- is resumed with and yields its results. A count hook's countdown is per thread, so the
-- instructions it runs leave the caller's countdown exactly where it was.
local function serve(...)
    local call = pack(...)
    while true do
        call = pack(raw_yield(call[1](unpack(call, 2, call.n))))
    end
end
local spare

-- unmetered(fn, ...): fn(...) charged nothing, and the caller's countdown to its next TICK not
-- moved: flowctl's own work of bounded size whose length or timing must not change what a task
-- is charged (sorting keys takes as many comparisons as the order of a hash table, which
-- depends on the interpreter's hash seed; a part built on demand, 45_on_demand.lua, may be
-- built by a query, and by the run's replay later). fn must not yield.
function unmetered(fn, ...)
    local thread = spare
    if thread == nil then
        thread = raw_create(serve)
        sethook(thread)                                      -- no hook: counts nothing
    end
    spare = nil                                              -- (a nested call makes its own)
    -- what fn charges (C work it asks for) is not the task's either
    local was_charged, was_budget = charged, budget
    budget = maxinteger
    local results = pack(raw_resume(thread, fn, ...))
    charged, budget = was_charged, was_budget
    if not results[1] then raw_error(results[2], 0) end     -- (memory: a limit, 10_limits.lua)
    spare = thread
    return unpack(results, 2, results.n)
end

-- begin_task(instructions, spent): a fresh budget (spent: already used of it, default 0);
-- returns what was used and allowed before, so a query can run on a budget of its own.
function begin_task(instructions, spent)
    local was_used, was_budget = ticked + charged, budget
    ticked, charged, budget = spent or 0, 0, instructions
    return was_used, was_budget
end

-- The texts Lua gives a real stack overflow ("f.lua:3: stack overflow", "C stack overflow",
-- "stack overflow (too many results)") and a failed allocation. sb_error and sb_assert keep
-- user code from raising them, so a string that reads like a limit is one.
local function limit_of_text(err)
    if err == "not enough memory" then return "memory" end
    if sfind(err, "stack overflow$") or sfind(err, "^[^']*stack overflow %([^']*%)$") then return "stack" end
    return nil
end

-- A limit error must end the run even when user code catches it: every catching function
-- asks is_fatal and re-raises. Once a limit was hit, every error is fatal.
function is_fatal(err)
    if limit_hit ~= nil or raw_rawequal(err, LIMIT_ERROR) then
        limit_hit = limit_hit or {"instructions", "?"}
        return true
    end
    if raw_type(err) ~= "string" then return false end
    local limit = limit_of_text(err)
    if limit == nil then return false end
    -- the flag goes up before the location is looked up: that may need memory too
    limit_hit = {limit, "?"}
    -- a stack message's position is the user's line unless the overflow hit inside flowctl's code
    limit_hit[2] = (limit == "stack" and smatch(err, "^([^:]-%.lua:%d+):")) or user_where(nil, 2) or "?"
    return true
end

-- caller_error(message): raise message at the line of the code that called flowctl's code
-- (the first frame that is not flowctl's own, stripped, bytecode), as a C function does
function caller_error(message)
    local level = 2
    while level < 200 do
        local info = getinfo(level, "S")
        if info == nil or info.source ~= "=?" then break end
        level = level + 1
    end
    raw_error(message, level)
end

-- rethrow(ok, ...): the results of a protected call, with a limit raised again
function rethrow(ok, ...)
    if not ok and is_fatal((...)) then raw_error(LIMIT_ERROR, 0) end
    return ok, ...
end

function sb_pcall(f, ...)
    return rethrow(raw_pcall(f, ...))
end

function sb_xpcall(f, handler, ...)
    return rethrow(raw_xpcall(f, function(err)
        if is_fatal(err) then return err end
        return handler(err)
    end, ...))
end

local FORGED = " [raised by user code, not a sandbox limit]"

-- error(): a message that reads like a limit is marked as the user's own
function sb_error(message, level)
    if raw_type(message) == "string" and limit_of_text(message) then message = message .. FORGED end
    local n = level == nil and 1 or to_integer(raw_tonumber(level) or level)
    if n == nil then
        local _, err = raw_pcall(raw_error, message, level)       -- Lua's own "bad argument #2"
        caller_error((sgsub(err, "to '[^']*'", "to 'error'", 1)))
    end
    if n <= 0 then raw_error(message, level) end
    -- one frame more than Lua's error counts: this one, unless it took the caller's place
    -- (`return error(...)`, a tail call: then level 1, the caller's line, is lost)
    raw_error(message, getinfo(1, "t").istailcall and n or n + 1)
end

function sb_assert(...)
    local v, message = ...
    if not v and raw_type(message) == "string" and limit_of_text(message) then
        return raw_assert(v, message .. FORGED, raw_select(3, ...))
    end
    return raw_assert(...)
end

-- coroutine.close returns the error a coroutine died of, or a __close method raised
function sb_close_checked(co)
    if raw_type(co) == "thread" and driver_owned[co] then return sb_close(co) end   -- its refusal, at the caller's line
    return rethrow(sb_close(co))
end

-- load(reader): Lua's load swallows any error its reader raises, limits included, so the
-- reader runs as Lua instead (lua/on_demand/40_library.lua), and the text it gives is loaded
-- as a string (text only: mode "t").
function sb_load_checked(chunk, chunkname, mode, chunk_env)
    local kind = raw_type(chunk)
    -- argument errors are raised by load itself, at the caller's line (a tail call)
    if (mode ~= nil and mode ~= "t") or (kind ~= "function" and kind ~= "string") then
        return sb_load(chunk, chunkname, mode, chunk_env)
    end
    if kind == "function" then
        local text, err = on_demand().read_chunk(chunk)
        if text == nil then return nil, err end
        chunk = text
    end
    charge(#chunk)                                                  -- the parser's work: ~3 ns a byte
    local fn, err = sb_load(chunk, chunkname, mode, chunk_env)
    if fn == nil and is_fatal(err) then raw_error(LIMIT_ERROR, 0) end
    return fn, err
end

-- The control table: the runtime's API for Python (runner/sandbox/runtime.py), the prelude's
-- result. User code never sees it: it can start and step threads, and run binary chunks.

control = {
    env = env, yield_command = yield_command, kit = kit,
    configure = configure, add_module = add_module, add_library = add_library, compile = compile,
    begin_task = begin_task, set_now = set_now,
    export = export, import = import, new_error = new_error, error_fields = error_fields,
}

-- take_values(t, i, j): t[i..j] of a values table export made, after their count (always a tuple for lupa)
function control.take_values(t, i, j)
    return j - i + 1, unpack(t, i, j)
end

-- run_chunk(code, part, ...): run one of flowctl's own compiled chunks (a shim) in the sandbox
-- environment. The only binary load there is: user code's load is text-only. A chunk with an
-- on-demand part (part: its name, 45_on_demand.lua) receives first the function that builds it.
function control.run_chunk(code, part, ...)
    local fn = raw_assert(raw_load(code, nil, "b", env))
    if part == nil then return fn(...) end
    return fn(function(...) return build_part(part, ...) end, ...)
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

-- The collector: a run's heap is small (~100 KiB) and mostly flowctl's own objects, made
-- before user code runs, and a cached run sits parked between workflow tasks, for hours
-- maybe, holding whatever garbage its last task left. Lua's default (incremental: a cycle
-- starts when the heap has doubled) leaves up to a heap's worth of garbage in every parked
-- run. Once the run is set up, the collector switches to generational mode: that one full
-- collection frees the setup's garbage and makes flowctl's objects old, and from then on
-- minor collections (every 20% of growth) free young garbage without walking them again.
-- Measured (docs/performance.md): 5-10 KiB of garbage per parked run instead of up to ~50,
-- for ~35 us of CPU per run.
local collectgarbage = collectgarbage

-- The entry point of user code: run the chunk (once), then call its exported method.
function control.entrypoint(chunk, method, chunkname)
    collectgarbage("generational")
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

-- park(full): the run waits (for an activity, a timer, a message: the driver calls it before it
-- waits), maybe for hours in a worker's cache. A minor collection frees the young garbage
-- the task left, so a parked run holds its live objects and little else (docs/performance.md,
-- The collector). Not observable by user code (no __gc, weak tables hold their entries).
-- park(true): a full collection (Python needs room in the heap: runtime.py, _room_for).
function control.park(full)
    collectgarbage(full and "collect" or "step", 0)
end

-- Everything step hands Python is text Python can decode: a Lua string may hold any bytes.
-- A result string that is not UTF-8 becomes a value the exporter refuses, naming its path
-- ("result: string is not valid UTF-8"), where Python's decoder would raise a traceback.
local NOT_UTF8 = "string is not valid UTF-8 (binary data must be encoded, e.g. as hex, to cross Temporal)"
local function crossable(r)
    for i = 2, r.n do
        local v = r[i]
        if raw_type(v) == "string" and not utf8_len(v) then
            r[i] = raw_setmetatable({message = NOT_UTF8}, ValueError)
        end
    end
    return r
end

local function text_or_unknown(where)
    return where and error_text(where) or "?"
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
        return "limit", hit[1], text_or_unknown((hit[2] ~= "?" and hit[2]) or user_where(co))
    end
    if r[1] then
        if raw_status(co) == "dead" then return "done", r.n - 1, unpack(crossable(r), 2, r.n) end
        if raw_rawequal(r[2], CMD) then return "command", r[3] end
        return "yield", nil
    end
    local err = r[2]
    if raw_type(err) == "string" then err = error_text(err) end
    return "error", err, error_text(traceback(co, error_text(err), 0)), text_or_unknown(user_where(co))
end

-- limit_where(id): where a limit stopped driver thread `id` (for a memory error that escaped step).
function control.limit_where(id)
    if limit_hit ~= nil and limit_hit[2] ~= "?" then return error_text(limit_hit[2]) end
    local co = id and threads[id]
    return text_or_unknown(co and user_where(co))
end

function control.type(v)
    return raw_type(v)
end

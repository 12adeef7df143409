-- The Lua half of the `funcs` module (its Python half: funcs.py): call activities, now
-- (funcs.call) or as futures (funcs.async), with per-executor options. funcs.call is built
-- when the module loads; executors' other methods and futures the first time a run uses one
-- (below the `--- on demand ---` line).
local build, kit = ...
local call, class, setmetatable = kit.call, kit.class, kit.setmetatable
local type, error, pack = kit.type, kit.error, kit.pack
local M = {}

local Executor, ExecutorMT = class("flowctl.Executor")

local function executor(options)
    return setmetatable({options = options}, ExecutorMT)
end

local function check_id(id, what)
    if type(id) ~= "string" then
        error(what .. ": the first argument must be an activity entry ID like \"app:charge_payment\", got "
            .. type(id), 3)
    end
end

-- options nil: the default executor's (always empty): Python then has no table to export
local function call_activity(options, id, ...)
    check_id(id, "funcs.call")
    local result, err = call({op = "funcs.call", id = id, args = pack(...), options = options})
    return result, err
end

function Executor:call(id, ...)
    return call_activity(self.options, id, ...)
end

-- with_options and async: built (below) the first time one is looked up
kit.later(function() build(kit, Executor, executor, check_id) end, Executor, ExecutorMT, {})

local default = executor({})

function M.new()
    return executor({})
end

-- Tail calls: errors raised at level 2 inside the executor still point at the user's line.
function M.call(id, ...)
    return call_activity(nil, id, ...)
end

function M.async(id, ...)
    return default:async(id, ...)
end

do return M end        -- (in a block: the rest of the file is a chunk of its own)

--- on demand ---
-- Executors' with_options and async, and futures (kit.later, above): the part above passes
-- what they use.
local kit, Executor, executor, check_id = ...
local call, class, setmetatable, getmetatable = kit.call, kit.class, kit.setmetatable, kit.getmetatable
local type_names, field = kit.type_names, kit.field
local type, error, pairs, pack = kit.type, kit.error, kit.pairs, kit.pack

-- Durations (5 * time.SECOND) become milliseconds, so options cross to Python as plain data.
local function plain(v)
    if type_names[getmetatable(v)] == "flowctl.Duration" then
        -- read raw: a changed ns stays a Duration, which the exporter refuses with its path
        local ns = field(v, "ns", "integer")
        return ns and ns // 1000000 or v
    elseif type(v) == "table" then
        local copy = {}
        for k, item in pairs(v) do copy[k] = plain(item) end
        return copy
    end
    return v
end

function Executor:with_options(options)
    if type(options) ~= "table" then
        error("with_options: expected a table of activity.* options, got " .. type(options), 2)
    end
    local merged = {}
    for k, v in pairs(self.options) do merged[k] = v end
    for k, v in pairs(options) do merged[k] = plain(v) end
    return executor(merged)
end

local Future, FutureMT = class("flowctl.Future")

function Future:result()
    if not self.done then
        local result, err = call({op = "await", handle = self.handle})
        self.done, self.value, self.err = true, result, err
    end
    return self.value, self.err
end

function Future:is_done()
    return self.done
end

function Executor:async(id, ...)
    check_id(id, "funcs.async")
    local handle = call({op = "funcs.start", id = id, args = pack(...), options = self.options})
    return setmetatable({handle = handle, done = false}, FutureMT)
end

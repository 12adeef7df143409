-- The Lua half of the `workflow` module (its Python half: workflow.py): run info,
-- versioning, search attributes and memo, child runs, continue-as-new, queries and updates.
-- All but info and the history's length and size are built the first time a run calls one
-- (below the `--- on demand ---` line).
local build, kit = ...
local call = kit.call
local M = {}

function M.info()
    return (call({op = "workflow.info"}))
end

function M.history_length()
    return (call({op = "workflow.history_length"}))
end

function M.history_size()
    return (call({op = "workflow.history_size"}))
end

-- the others: stand-ins that build the part and call the real one (a tail call: an error
-- raised at level 2 still names the user's line)
local function later(name)
    return function(...) return build(kit)[name](...) end
end
for _, name in kit.ipairs({"version", "attrs", "exec", "continue_as_new", "on_query", "on_update"}) do
    M[name] = later(name)
end

do return M end        -- (in a block: the rest of the file is a chunk of its own)

--- on demand ---
-- version, attrs, exec, continue_as_new, on_query and on_update (stand-ins above).
local kit = ...
local call, yield_command = kit.call, kit.yield_command
local type, error, pairs, describe = kit.type, kit.error, kit.pairs, kit.describe
local mtype, pack = kit.math_type, kit.pack
local M = {}

function M.version(change_id, min_supported, max_supported)
    if type(change_id) ~= "string" or change_id == "" then
        error("workflow.version: change_id must be a non-empty string", 2)
    end
    if mtype(min_supported) ~= "integer" or mtype(max_supported) ~= "integer" then
        error("workflow.version: min_supported and max_supported must be integers", 2)
    end
    if min_supported > max_supported then
        error("workflow.version: min_supported (" .. min_supported .. ") is greater than max_supported ("
            .. max_supported .. ")", 2)
    end
    local version = call({op = "workflow.version", change_id = change_id, min = min_supported,
                          max = max_supported})
    return version
end

function M.attrs(attrs)
    if type(attrs) ~= "table" then
        error("workflow.attrs: expected a table {search = {...}, memo = {...}}", 2)
    end
    for key in pairs(attrs) do
        if key ~= "search" and key ~= "memo" then
            error("workflow.attrs: unknown key " .. (type(key) == "string" and "'" .. key .. "'" or describe(key))
                .. " (use search and memo)", 2)
        end
    end
    call({op = "workflow.attrs", search = attrs.search, memo = attrs.memo})
    return true
end

-- exec(entry, input...) -> result, err: run a child workflow (on the entry's own worker) and wait.
function M.exec(entry, ...)
    if type(entry) ~= "string" then
        error("workflow.exec: the first argument must be a workflow entry ID like \"app:child\"", 2)
    end
    local result, err = call({op = "process.exec", entry = entry, args = pack(...), options = {}, context = {},
                              messages = {}})
    return result, err
end

-- continue_as_new(input...): end this run and start a fresh one with the same workflow id; messages
-- not yet received are carried over. It does not return.
function M.continue_as_new(...)
    local ok, err = yield_command({op = "workflow.continue_as_new", args = pack(...)})
    error(ok and "workflow.continue_as_new did not end the run" or err, 2)
end

-- on_query(name, fn): `flowctl query WFID name` calls fn(args...) and returns its result. It must
-- not wait (no funcs.call, time.sleep, receive...).
function M.on_query(name, fn)
    if type(name) ~= "string" or type(fn) ~= "function" then
        error("workflow.on_query: expected a name and a function", 2)
    end
    call({op = "workflow.on_query", name = name, fn = fn})
end

-- on_update(name, fn[, validator]): fn(args...) may wait; validator(args...) runs first and
-- rejects the update by raising an error or returning false[, reason].
function M.on_update(name, fn, validator)
    if type(name) ~= "string" or type(fn) ~= "function" or (validator ~= nil and type(validator) ~= "function") then
        error("workflow.on_update: expected a name, a function and an optional validator function", 2)
    end
    call({op = "workflow.on_update", name = name, fn = fn, validator = validator})
end

return M

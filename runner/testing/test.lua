-- The Lua half of the `test` module a *_test.lua file requires (its Python half: session.py
-- answers its commands). Assertions are plain Lua: a failed one raises an error object of
-- kind TEST_FAILED whose `where` is the line of the assertion (errors.new records it).
local kit = ...
local call = kit.call
-- the built-in modules (the runner lists them for every test file), as they are before it loads
local errors, json = require("errors"), require("json")
local errors_is, errors_new, NULL = errors.is, errors.new, json.null
local type, error, tostring, pairs, ipairs, pcall, select = type, error, tostring, pairs, ipairs, pcall, select
local sformat, sfind, smatch = string.format, string.find, string.match
local concat = table.concat
local M = {}

local function fail(message, diff)
    error(errors_new({kind = "TEST_FAILED", message = message, retryable = false,
                      details = diff and {diff = diff} or nil}), 0)
end

-- show(v): a stable, readable rendering (sorted keys, one item per line) for diffs.
local function is_array(t)
    local n = #t
    local count = 0
    for _ in pairs(t) do count = count + 1 end
    return count == n
end

local function show(v, indent, seen)
    indent = indent or ""
    seen = seen or {}
    local kind = type(v)
    if kind == "string" then return sformat("%q", v) end
    if kind ~= "table" then return tostring(v) end
    if errors_is(v) then
        return "error(" .. sformat("%q", v:kind()) .. ", " .. sformat("%q", v:message()) .. ")"
    end
    if v == NULL then return "null" end
    if seen[v] then return "<cycle>" end
    seen[v] = true
    local inner = indent .. "  "
    local lines = {}
    if is_array(v) then
        if #v == 0 then seen[v] = nil return "{}" end
        for _, item in ipairs(v) do lines[#lines + 1] = inner .. show(item, inner, seen) .. "," end
    else
        for k, item in pairs(v) do
            local key = type(k) == "string" and smatch(k, "^[%a_][%w_]*$") and k or ("[" .. show(k, inner, seen) .. "]")
            lines[#lines + 1] = inner .. key .. " = " .. show(item, inner, seen) .. ","
        end
    end
    seen[v] = nil
    return "{\n" .. concat(lines, "\n") .. "\n" .. indent .. "}"
end
M.show = function(v) return show(v) end

local function equal(a, b, seen)
    if a == b then return true end
    if type(a) ~= "table" or type(b) ~= "table" then return false end
    if errors_is(a) or errors_is(b) then
        return errors_is(a) and errors_is(b) and a:kind() == b:kind() and a:message() == b:message()
    end
    seen = seen or {}
    if seen[a] == b then return true end
    seen[a] = b
    for k, v in pairs(a) do
        if not equal(v, b[k], seen) then return false end
    end
    for k in pairs(b) do
        if a[k] == nil then return false end
    end
    return true
end
M.equal = function(a, b) return equal(a, b) end

-- test.eq(actual, expected [, message]): deep equality; a failure shows a diff of the two.
function M.eq(actual, expected, message)
    if equal(actual, expected) then return end
    local expected_text, actual_text = show(expected), show(actual)
    local diff = call({op = "test.diff", expected = expected_text, actual = actual_text})
    fail((message and (message .. ": ") or "") .. "values differ (- expected, + actual)", diff)
end

function M.ne(actual, unexpected, message)
    if not equal(actual, unexpected) then return end
    fail((message and (message .. ": ") or "") .. "expected a value different from " .. show(unexpected))
end

-- test.ok(value [, message]): value must be neither nil nor false.
function M.ok(value, message)
    if value then return value end
    fail(message or ("expected a true value, got " .. tostring(value)))
end

function M.fail(message)
    fail(message or "test.fail() called")
end

-- test.err_kind(err, "NOT_FOUND"): err must be an error object of that kind.
function M.err_kind(err, kind, message)
    local prefix = message and (message .. ": ") or ""
    if err == nil then fail(prefix .. "expected an error of kind " .. kind .. ", got no error") end
    if not errors_is(err) then fail(prefix .. "expected an error of kind " .. kind .. ", got " .. show(err)) end
    if err:kind() ~= kind then
        fail(prefix .. "expected an error of kind " .. kind .. ", got " .. err:kind() .. ": " .. err:message())
    end
    return err
end

-- test.fails(fn [, pattern]): fn must raise an error (matching the Lua pattern); returns it.
function M.fails(fn, pattern)
    if type(fn) ~= "function" then error("test.fails: expected a function, got " .. type(fn), 2) end
    local ok, err = pcall(fn)
    if ok then fail("expected the function to raise an error, but it returned") end
    if pattern ~= nil and not sfind(tostring(err), pattern) then
        fail("the error " .. show(tostring(err)) .. " does not match " .. show(pattern))
    end
    return err
end

-- test.run(id, input, {mocks = {...}, pending = {...}, signals = {...}, timeout = "30d", id = "wf-id",
--          context = {...}})
-- runs the workflow entry on the time-skipping server and returns result, err.
function M.run(id, ...)
    if type(id) ~= "string" then error("test.run: the first argument must be a workflow entry ID, got "
        .. type(id), 2) end
    local n = select("#", ...)
    local input, options = ...
    if options ~= nil and type(options) ~= "table" then
        error("test.run: options must be a table like {mocks = {...}, signals = {...}}, got " .. type(options), 2)
    end
    return call({op = "test.run", id = id, input = input, has_input = n >= 1 and input ~= nil,
                 options = options or {}})
end

-- Pending activities (async completion). test.pending(): what a mock returns to leave its activity
-- open, as activity.pending() does in a real one. The others act on an open activity from outside,
-- as `flowctl activity complete|fail|heartbeat` does; `ref` is its task token, the table a `pending`
-- handler of test.run gets, or {workflow_id = ..., activity_id = ...}.
function M.pending()
    return call({op = "test.pending"})
end

function M.complete_activity(ref, result)
    call({op = "test.complete_activity", ref = ref, value = result})
end

-- test.fail_activity(ref, errors.new{kind = "DECLINED", message = "...", retryable = false})
function M.fail_activity(ref, err)
    if errors_is(err) then
        err = {kind = err:kind(), message = err:message(), retryable = err:retryable(), details = err:details()}
    elseif type(err) ~= "table" then
        error("test.fail_activity: expected errors.new{kind = ..., message = ...}, got " .. type(err), 2)
    end
    call({op = "test.fail_activity", ref = ref, value = err})
end

function M.heartbeat_activity(ref, details)
    call({op = "test.heartbeat_activity", ref = ref, value = details})
end

-- test.history(): the event types of the last run, e.g. {"WorkflowExecutionStarted", ...}.
function M.history()
    return call({op = "test.history"})
end

-- test.commands(): the commands of the last run, as golden files list them ("activity app:x").
function M.commands()
    return call({op = "test.commands"})
end

-- test.golden(name): the last run's commands must match golden/<name>.txt beside this file.
function M.golden(name)
    if type(name) ~= "string" then error("test.golden: expected a name, got " .. type(name), 2) end
    local problem, diff = call({op = "test.golden", name = name})
    if problem ~= nil then fail(problem, diff) end
end

return M

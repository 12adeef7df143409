-- The Lua half of the `process` module (its Python half: process.py): pids, messages,
-- children, monitors and links. Messages' and Payloads' methods and spawners' methods are built
-- the first time a run uses one (below the `--- on demand ---` line): most actors only send,
-- listen and wait.
local build, kit, kernel = ...
local call, class, setmetatable = kit.call, kit.class, kit.setmetatable
local field, describe, rawget, is_a = kit.field, kit.describe, kit.rawget, kit.is_a
local type, error, tostring, pairs, pack = kit.type, kit.error, kit.tostring, kit.pairs, kit.pack
local M = {event = {EXIT = "EXIT", LINK_DOWN = "LINK_DOWN"}}

-- Pids: a workflow id (tostring(pid) is the id); equal when the ids are.
local Pid, PidMT = class("flowctl.Pid")
PidMT.__tostring = function(p) return field(p, "id", "string") or "(a changed pid)" end
PidMT.__eq = function(a, b) return a.id == b.id end
PidMT.__concat = function(a, b) return tostring(a) .. tostring(b) end

-- pid(id, run_id): a Pid; ids come from the driver, which sends strings only
local function pid(id, run_id)
    if type(id) ~= "string" then return nil end
    return setmetatable({id = id, run_id = type(run_id) == "string" and run_id or nil}, PidMT)
end

function Pid:workflow_id() return self.id end

local function pid_id(p, what)
    if is_a(p, PidMT) then
        local id = field(p, "id", "string")
        if id == nil or id == "" then
            error(what .. ": this pid was changed (its id is " .. describe(rawget(p, "id")) .. ", not a workflow id "
                .. "string); use the pid process.self() or spawn returned", 3)
        end
        return id
    end
    if type(p) == "string" and p ~= "" then return p end
    error(what .. ": expected a pid or a workflow id string, got " .. type(p), 3)
end

-- Messages: what inbox() and listen(topic, {message = true}) deliver.
local Payload, PayloadMT = class("flowctl.Payload")
local Message, MessageMT = class("flowctl.Message")

local function message(record)
    return setmetatable({_topic = record.topic, _from = pid(record.from), _payload = record.payload}, MessageMT)
end

local function payload_only(record)
    return record.payload
end

local function event(record)
    return {kind = record.kind, from = pid(record.from),
            result = {value = record.value, error = record.error}}
end

function M.self()
    local id, run_id = call({op = "process.self"})
    return pid(id, run_id)
end

-- send(pid, topic, payload) -> true | nil, err: a Temporal signal named topic.
function M.send(target, topic, payload)
    local id = pid_id(target, "process.send")
    if type(topic) ~= "string" or topic == "" then
        error("process.send: topic must be a non-empty string", 2)
    end
    local _, err = call({op = "process.send", to = id, topic = topic, payload = payload})
    if err ~= nil then return nil, err end
    return true
end

function M.inbox()
    return kernel.new_channel(call({op = "process.inbox"}), message)
end

-- listen(topic) delivers payloads; listen(topic, {message = true}) delivers Messages.
function M.listen(topic, options)
    if type(topic) ~= "string" or topic == "" then
        error("process.listen: topic must be a non-empty string", 2)
    end
    local as_message = type(options) == "table" and options.message == true
    local id = call({op = "process.listen", topic = topic})
    return kernel.new_channel(id, as_message and message or payload_only)
end

function M.events()
    return kernel.new_channel(call({op = "process.events"}), event)
end

local function pid_call(op, what)
    return function(target, ...)
        local _, err = call({op = op, id = pid_id(target, what), args = pack(...)})
        if err ~= nil then return nil, err end
        return true
    end
end

M.monitor = pid_call("process.monitor", "process.monitor")
M.unmonitor = pid_call("process.unmonitor", "process.unmonitor")
M.link = pid_call("process.link", "process.link")
M.unlink = pid_call("process.unlink", "process.unlink")
M.terminate = pid_call("process.terminate", "process.terminate")
M.cancel = pid_call("process.cancel", "process.cancel")

function M.set_options(options)
    if type(options) ~= "table" then error("process.set_options: expected a table", 2) end
    call({op = "process.set_options", trap_links = options.trap_links})
    return true
end

-- Spawners carry start options; every with_* returns a new spawner.
local Spawner, SpawnerMT = class("flowctl.Spawner")

local function spawner(spec)
    return setmetatable(spec, SpawnerMT)
end

-- Messages', Payloads' and spawners' methods: built (below) the first time one is looked up
local function build_rest()
    build(kit, Message, MessageMT, Payload, PayloadMT, Spawner, SpawnerMT, spawner, pid)
end
kit.later(build_rest, Message, MessageMT, {"__tostring"})
kit.later(build_rest, Payload, PayloadMT, {})
kit.later(build_rest, Spawner, SpawnerMT, {})

local default = spawner({options = {}, context = {}, messages = {}})
function M.with_options(options) return default:with_options(options) end
function M.with_context(values) return default:with_context(values) end
function M.spawn(...) return default:spawn(...) end
function M.spawn_monitored(...) return default:spawn(...) end
function M.exec(...) return default:exec(...) end

do return M end        -- (in a block: the rest of the file is a chunk of its own)

--- on demand ---
-- Messages' and Payloads' methods, spawners' with_* and spawn/exec (kit.later, above): the part
-- above passes what they use.
local kit, Message, MessageMT, Payload, PayloadMT, Spawner, SpawnerMT, spawner, pid = ...
local call, setmetatable = kit.call, kit.setmetatable
local type, error, pairs, pack = kit.type, kit.error, kit.pairs, kit.pack

function Payload:data() return self.value end

function Message:topic() return self._topic end
function Message:from() return self._from end
function Message:payload() return setmetatable({value = self._payload}, PayloadMT) end
MessageMT.__tostring = function(m) return "message " .. m._topic end

local function copy(t)
    local c = {}
    for k, v in pairs(t or {}) do c[k] = v end
    return c
end

local function derive(self)
    return spawner({options = copy(self.options), context = copy(self.context), name = self.name,
                    messages = copy(self.messages)})
end

-- A with_* method that merges a table into the new spawner's `key` table.
local function merging(key, refusal)
    return function(self, values)
        if type(values) ~= "table" then error(refusal, 2) end
        local s = derive(self)
        for k, v in pairs(values) do s[key][k] = v end
        return s
    end
end

Spawner.with_options = merging("options", "with_options: expected a table of temporal.workflow.* options")
Spawner.with_context = merging("context", "with_context: expected a table")

function Spawner:with_name(name)
    if type(name) ~= "string" or name == "" then error("with_name: expected a non-empty string", 2) end
    local s = derive(self)
    s.name = name
    return s
end

function Spawner:with_message(topic, payload)
    if type(topic) ~= "string" or topic == "" then error("with_message: topic must be a non-empty string", 2) end
    local s = derive(self)
    s.messages[#s.messages + 1] = {topic = topic, payload = payload}
    return s
end

-- start(...) -> what the driver answers; errors point at the line that called spawn/exec.
local function start(self, op, entry, worker, ...)
    if type(entry) ~= "string" then
        error("process: the first argument must be a workflow entry ID like \"app:order_workflow\"", 3)
    end
    if worker ~= nil and type(worker) ~= "string" then
        error("process: the second argument must be a temporal.worker entry ID like \"app:worker\"", 3)
    end
    local first, second = call({op = op, entry = entry, worker = worker, args = pack(...),
                                options = self.options, context = self.context, name = self.name,
                                messages = self.messages}, 3)
    return first, second
end

-- spawn(entry, worker, input...) -> pid | nil, err (a child workflow, monitored: see process.events)
function Spawner:spawn(entry, worker, ...)
    local id, run_or_err = start(self, "process.spawn", entry, worker, ...)
    if id == nil then return nil, run_or_err end
    return pid(id, run_or_err)
end
Spawner.spawn_monitored = Spawner.spawn

-- exec(entry, worker, input...) -> result, err: start a child and wait for it.
function Spawner:exec(entry, worker, ...)
    local result, err = start(self, "process.exec", entry, worker, ...)
    return result, err
end


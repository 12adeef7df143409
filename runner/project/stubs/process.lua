---@meta process

---Messages (Temporal signals) and child workflows.
---@class processlib
---@field event {EXIT: string, LINK_DOWN: string} The kinds of ProcessEvent.
process = {}

---This workflow's pid.
---@return Pid pid
function process.self() end

---Sends a message (a signal named `topic`).
---@param target PidLike
---@param topic string
---@param payload? any
---@return boolean? ok
---@return Error? err
function process.send(target, topic, payload) end

---A channel of the Messages of every topic nobody listens to.
---@return Channel ch
function process.inbox() end

---A channel of the topic's payloads (Messages with `{message = true}`).
---@param topic string
---@param options? {message?: boolean}
---@return Channel ch
function process.listen(topic, options) end

---A channel of ProcessEvents: children's EXIT and LINK_DOWN.
---@return Channel ch
function process.events() end

---Starts a child workflow on the task queue of `worker`; monitored from the start.
---@param id EntryID
---@param worker EntryID
---@param ... any
---@return Pid? pid
---@return Error? err
function process.spawn(id, worker, ...) end

---Same as `spawn`.
---@param id EntryID
---@param worker EntryID
---@param ... any
---@return Pid? pid
---@return Error? err
function process.spawn_monitored(id, worker, ...) end

---Starts a child workflow and waits for its result.
---@param id EntryID
---@param worker EntryID
---@param ... any
---@return any result
---@return Error? err
function process.exec(id, worker, ...) end

---Its exit arrives on `process.events()` as EXIT.
---@param target PidLike
---@return boolean ok
function process.monitor(target) end

---Stops monitoring.
---@param target PidLike
---@return boolean ok
function process.unmonitor(target) end

---An abnormal end of the child fails this workflow (or sends LINK_DOWN with trap_links).
---@param target PidLike
---@return boolean ok
function process.link(target) end

---Removes the link.
---@param target PidLike
---@return boolean ok
function process.unlink(target) end

---Terminates a child of this run.
---@param target PidLike
---@param reason? string
---@return boolean ok
function process.terminate(target, reason) end

---Cancels a child; after `deadline` it is terminated.
---@param target PidLike
---@param deadline? DurationLike
---@return boolean ok
function process.cancel(target, deadline) end

---`trap_links = true`: a linked child's abnormal end sends LINK_DOWN.
---@param options {trap_links?: boolean}
---@return boolean ok
function process.set_options(options) end

---A spawner with `temporal.workflow.*` start options.
---@param options table<string, any>
---@return Spawner spawner
function process.with_options(options) end

---A spawner that passes context values to the child.
---@param values table<string, any>
---@return Spawner spawner
function process.with_context(values) end

return process

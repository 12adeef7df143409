---@meta workflow

---The running workflow itself.
---@class workflowlib
workflow = {}

---The run's ids, type, task queue, attempt, history, entry and revision.
---@return WorkflowInfo info
function workflow.info() end

---The version this run uses (Temporal patches): a new run gets `max_supported`.
---
---Errors: fails the workflow task when the recorded version is outside the range
---@param change_id string
---@param min_supported integer
---@param max_supported integer
---@return integer version
function workflow.version(change_id, min_supported, max_supported) end

---Upserts search attributes and memo.
---@param attrs {search?: table, memo?: table}
---@return boolean ok
function workflow.attrs(attrs) end

---Events in the history so far.
---@return integer n
function workflow.history_length() end

---Bytes of the history so far.
---@return integer bytes
function workflow.history_size() end

---A child workflow on the entry's own worker; waits for its result.
---@param id EntryID
---@param ... any
---@return any result
---@return Error? err
function workflow.exec(id, ...) end

---Ends the run and starts a fresh one with the same workflow id (and the newest revision).
---@param ... any
function workflow.continue_as_new(...) end

---`flowctl query WFID name` calls `fn`; it must not wait.
---@param name string
---@param fn fun(...: any): any
function workflow.on_query(name, fn) end

---`flowctl update WFID name` runs the validator, then `fn`, which may wait.
---@param name string
---@param fn fun(...: any): any
---@param validator? fun(...: any): boolean?
function workflow.on_update(name, fn, validator) end

return workflow

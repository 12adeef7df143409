---@meta funcs

---Activities (function.lua and function.python entries) called from a workflow.
---@class funcslib
funcs = {}

---Runs the activity entry on its worker's task queue with the entry's options and waits for it.
---
---Errors: `nil, err` when the activity fails (its error's kind), times out (`TIMEOUT`) or is cancelled (`CANCELED`)
---@param id EntryID
---@param ... any
---@return any result
---@return Error? err
---@overload fun(id: EntryID, args: table): any, Error?
function funcs.call(id, ...) end

---Starts the activity and returns at once; `future:result()` waits for it.
---@param id EntryID
---@param ... any
---@return Future future
function funcs.async(id, ...) end

---An executor with the entry's own options; `:with_options({...})` changes them.
---@return Executor executor
function funcs.new() end

return funcs

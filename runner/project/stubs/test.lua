---@meta test

---Lua tests (`*_test.lua`, `flowctl test`): run workflows on the time-skipping server and assert.
---@class testlib
test = {}

---Runs the workflow entry to its end (mocked activities, signals, timeout, id, context).
---@param id EntryID
---@param input? any
---@param options? TestRunOptions
---@return any result
---@return Error? err
function test.run(id, input, options) end

---Deep equality.
---@param actual any
---@param expected any
---@param message? string
function test.eq(actual, expected, message) end

---Deep inequality.
---@param actual any
---@param unexpected any
---@param message? string
function test.ne(actual, unexpected, message) end

---`value` is neither nil nor false.
---@param value any
---@param message? string
function test.ok(value, message) end

---Fails the test.
---@param message? string
function test.fail(message) end

---`err` is an error of `kind`.
---@param err any
---@param kind string
---@param message? string
---@return Error err
function test.err_kind(err, kind, message) end

---`fn` raises an error (matching the pattern).
---@param fn function
---@param pattern? string
---@return any err
function test.fails(fn, pattern) end

---Deep equality as a value.
---@param a any
---@param b any
---@return boolean equal
function test.equal(a, b) end

---A value as readable text.
---@param v any
---@return string text
function test.show(v) end

---The event types of the last run.
---@return string[] events
function test.history() end

---The commands of the last run ("activity app:x").
---@return string[] commands
function test.commands() end

---The last run's commands must match `golden/<name>.txt`.
---@param name string
function test.golden(name) end

---What a mock returns to leave its activity open (like `activity.pending()`).
---@return string marker
function test.pending() end

---Completes an open activity from outside (by token, `pending` table or `{workflow_id=, activity_id=}`).
---@param ref string|PendingActivity|table
---@param result? any
function test.complete_activity(ref, result) end

---Fails an open activity from outside.
---@param ref string|PendingActivity|table
---@param err Error|ErrorSpec
function test.fail_activity(ref, err) end

---Heartbeats an open activity.
---@param ref string|PendingActivity|table
---@param details? any
function test.heartbeat_activity(ref, details) end

return test

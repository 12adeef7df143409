---@meta activity

---The running activity attempt.
---@class activitylib
activity = {}

---Tells Temporal the attempt is alive; `details` come back on the next attempt.
---@param details? any
function activity.heartbeat(details) end

---The attempt's ids, type, attempt number, task queue, workflow and heartbeat details.
---@return ActivityInfo info
function activity.info() end

---Whether the attempt was cancelled.
---@return boolean cancelled
function activity.is_cancelled() end

return activity

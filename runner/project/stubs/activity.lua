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

---`return activity.pending()` leaves the activity open: it is completed, failed or heartbeated later from outside by `info().task_token` (`flowctl activity complete|fail|heartbeat`); its timeouts keep applying and no worker slot is held meanwhile.
---@return string marker
function activity.pending() end

return activity

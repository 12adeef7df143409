---@meta time

---Durable timers and the workflow's clock (in activities the real clock).
---@class timelib
---@field NANOSECOND Duration One nanosecond.
---@field MICROSECOND Duration One microsecond.
---@field MILLISECOND Duration One millisecond.
---@field SECOND Duration One second.
---@field MINUTE Duration One minute.
---@field HOUR Duration One hour.
time = {}

time.Duration = {}
time.Time = {}

---The workflow's clock (the time of the current workflow task); the real clock in an activity.
---@return Time now
function time.now() end

---A durable timer in a workflow (survives worker restarts); a real sleep in an activity.
---
---Errors: raises a `CANCELED` error when the run or activity is cancelled
---@param d DurationLike
function time.sleep(d) end

---A channel that receives a Time once, when a durable timer fires.
---
---Only in workflow.lua entries.
---@param d DurationLike
---@return Channel ch
function time.after(d) end

---`time.now():sub(t)`.
---@param t Time
---@return Duration elapsed
function time.since(t) end

---The Time of a Unix timestamp.
---@param seconds integer
---@param nanos? integer
---@return Time t
function time.unix(seconds, nanos) end

---`"90s"`, `"1h30m"`, `"250ms"`, `"2d"` as a Duration.
---
---Errors: raises on text that is not a duration
---@param text string
---@return Duration d
function time.parse_duration(text) end

---Whether `v` is a Duration.
---@param v any
---@return boolean is
function time.Duration.is(v) end

---A Duration of `ns` nanoseconds.
---@param ns integer
---@return Duration d
function time.Duration.from_nanoseconds(ns) end

---Whether `v` is a Time.
---@param v any
---@return boolean is
function time.Time.is(v) end

return time

---@meta flowctl

-- flowctl's object types and the table shapes the modules take and return.

---a Duration, a string like "250ms", "1h30m", "2d", or milliseconds
---@alias DurationLike Duration|string|integer|number

---an entry ID, `namespace:name`
---@alias EntryID string

---a Pid or a workflow id
---@alias PidLike Pid|string

---A span of time; `d1 + d2`, `d1 - d2`, `n * d`, `d / n`, `-d`, `d1 < d2`, `tostring(d)` (`1h30m0s`).
---@class Duration
---@operator add(Duration): Duration
---@operator sub(Duration): Duration
---@operator mul(number): Duration
---@operator div(number): Duration
---@operator unm: Duration
local Duration = {}

---Whole nanoseconds.
---@return integer ns
function Duration:nanoseconds() end

---Whole microseconds.
---@return integer us
function Duration:microseconds() end

---Whole milliseconds.
---@return integer ms
function Duration:milliseconds() end

---Seconds.
---@return number s
function Duration:seconds() end

---Minutes.
---@return number m
function Duration:minutes() end

---Hours.
---@return number h
function Duration:hours() end

---A point in time; `t1 < t2`, `t - x`, `t + d`, `tostring(t)` (RFC 3339).
---@class Time
---@operator add(Duration): Time
---@operator sub(Time): Duration
local Time = {}

---`t:sub(t2)` a Duration; `t:sub(d)` a Time.
---@param other Time|DurationLike
---@return Duration|Time result
function Time:sub(other) end

---A later Time.
---@param d DurationLike
---@return Time t
function Time:add(d) end

---Unix seconds.
---@return integer seconds
function Time:unix() end

---Unix milliseconds.
---@return integer ms
function Time:unix_milli() end

---Unix nanoseconds.
---@return integer ns
function Time:unix_nano() end

---Earlier than `other`.
---@param other Time
---@return boolean before
function Time:before(other) end

---Later than `other`.
---@param other Time
---@return boolean after
function Time:after(other) end

---The same instant.
---@param other Time
---@return boolean equal
function Time:equal(other) end

---`2024-05-01T12:00:00Z`.
---@return string text
function Time:format_rfc3339() end

---An error value; `tostring(err)` is `KIND: message`.
---@class Error
local Error = {}

---`NOT_FOUND`, `INVALID`... or your own UPPER_SNAKE_CASE kind.
---@return string kind
function Error:kind() end

---The message.
---@return string message
function Error:message() end

---Whether a retry can help (false for a failed call whose kind its retry policy lists in non_retryable_error_kinds).
---@return boolean retryable
function Error:retryable() end

---The details given to errors.new.
---@return any details
function Error:details() end

---The Lua `file:line` where it was made.
---@return string? where
function Error:where() end

---Calls activities with its own options.
---@class Executor
local Executor = {}

---As `funcs.call`.
---@param id EntryID
---@param ... any
---@return any result
---@return Error? err
function Executor:call(id, ...) end

---As `funcs.async`.
---@param id EntryID
---@param ... any
---@return Future future
function Executor:async(id, ...) end

---A new executor; `activity.*` options (timeouts, task_queue, retry_policy) merged over these.
---@param options table<string, any>
---@return Executor executor
function Executor:with_options(options) end

---An activity started with `async`.
---@class Future
local Future = {}

---Waits for the activity.
---@return any result
---@return Error? err
function Future:result() end

---Whether it has finished.
---@return boolean done
function Future:is_done() end

---A channel of values.
---@class Channel
local Channel = {}

---Sends (waits while the buffer is full).
---@param value any
---@return boolean ok
function Channel:send(value) end

---The next value; `ok` false once closed and drained.
---@return any value
---@return boolean ok
function Channel:receive() end

---Closes the channel.
function Channel:close() end

---A receive case for `channel.select`.
---@return Case case
function Channel:case_receive() end

---A send case for `channel.select`.
---@param value any
---@return Case case
function Channel:case_send(value) end

---A case of `channel.select`.
---@class Case
local Case = {}

---A workflow; `tostring(pid)` is its workflow id.
---@class Pid
local Pid = {}

---The workflow id.
---@return string id
function Pid:workflow_id() end

---A message from a workflow or a client.
---@class Message
local Message = {}

---The topic (the signal name).
---@return string topic
function Message:topic() end

---The sender (nil for a plain client).
---@return Pid? from
function Message:from() end

---The payload.
---@return Payload payload
function Message:payload() end

---A message's payload.
---@class Payload
local Payload = {}

---The payload's value.
---@return any data
function Payload:data() end

---Starts children with options, context, a name and start messages.
---@class Spawner
local Spawner = {}

---`temporal.workflow.*` options merged over these.
---@param options table<string, any>
---@return Spawner spawner
function Spawner:with_options(options) end

---Context values merged over these.
---@param values table<string, any>
---@return Spawner spawner
function Spawner:with_context(values) end

---The workflow id (idempotent start).
---@param name string
---@return Spawner spawner
function Spawner:with_name(name) end

---A message delivered before any later signal.
---@param topic string
---@param payload? any
---@return Spawner spawner
function Spawner:with_message(topic, payload) end

---Starts the child.
---@param id EntryID
---@param worker EntryID
---@param ... any
---@return Pid? pid
---@return Error? err
function Spawner:spawn(id, worker, ...) end

---Same as `spawn`.
---@param id EntryID
---@param worker EntryID
---@param ... any
---@return Pid? pid
---@return Error? err
function Spawner:spawn_monitored(id, worker, ...) end

---Starts the child and waits.
---@param id EntryID
---@param worker EntryID
---@param ... any
---@return any result
---@return Error? err
function Spawner:exec(id, worker, ...) end

---What `errors.new` takes.
---@class ErrorSpec
---@field kind? string UPPER_SNAKE_CASE (default `INTERNAL`).
---@field message? string The message.
---@field retryable? boolean Default: true, except INVALID, NOT_FOUND, LIMIT_EXCEEDED, CANCELED, TERMINATED.
---@field details? any Plain data.
local ErrorSpec = {}

---What `workflow.info()` returns.
---@class WorkflowInfo
---@field workflow_id string
---@field run_id string
---@field workflow_type string
---@field task_queue string
---@field namespace string
---@field attempt integer
---@field history_length integer
---@field history_size integer
---@field start_time string
---@field entry_id string
---@field revision string
---@field parent_workflow_id? string
---@field continued_run_id? string
local WorkflowInfo = {}

---What `activity.info()` returns.
---@class ActivityInfo
---@field activity_id string
---@field activity_type string
---@field attempt integer
---@field task_queue string
---@field workflow_id string
---@field workflow_run_id string
---@field workflow_type string
---@field namespace string
---@field heartbeat_details any[]
---@field task_token string Base64; completes the attempt from outside (`flowctl activity complete TOKEN`).
local ActivityInfo = {}

---What `process.events()` delivers.
---@class ProcessEvent
---@field kind string `process.event.EXIT` or `process.event.LINK_DOWN`
---@field from Pid The child.
---@field result {value: any, error: Error?} The child's result or error.
local ProcessEvent = {}

---What a `pending` handler of `test.run` gets: an activity left open, as the party outside knows it.
---@class PendingActivity
---@field token string The task token (base64), as `activity.info().task_token`.
---@field activity string The activity entry ID.
---@field activity_id string The activity's id in its workflow.
---@field workflow_id string The workflow id.
---@field attempt integer The attempt (1 first).
---@field input any The activity's input.
local PendingActivity = {}

---What `channel.select` returns.
---@class SelectResult
---@field channel? Channel The channel of the case that won.
---@field value? any The value received.
---@field ok? boolean false: the channel was closed.
---@field default? boolean true: nothing was ready.
local SelectResult = {}

---The options of `test.run`.
---@class TestRunOptions
---@field mocks? table<string, fun(...: any): any, Error?> Activity entry ID -> a Lua function answering instead.
---@field pending? table<string, fun(pending: PendingActivity)> Activity entry ID -> called once it is left pending.
---@field signals? table Messages sent to the run.
---@field timeout? string How long the run may take (workflow time).
---@field id? string The workflow id.
---@field context? table<string, any> Context values.
local TestRunOptions = {}

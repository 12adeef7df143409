"""The ``time`` module in workflows: workflow time, durable timers, Time and Duration objects.

Durations are integer nanoseconds (like Go's ``time.Duration``), Times are integer
nanoseconds since the Unix epoch, both wrapped in small Lua objects with metamethods so
``5 * time.SECOND``, ``t1:sub(t0)`` and ``d1 < d2`` read naturally. ``time.now()`` is the
workflow's deterministic clock (the time of the current workflow task), ``time.sleep``
is a durable Temporal timer, ``time.after`` starts one and returns a channel-like handle.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import workflow

from registry.durations import parse_duration
from registry.errors import FlowError
from runner.sandbox.driver import Blocking, Handler, Reply, ShimError
from runner.shims.run_context import WorkflowRun

NS_PER_MS = 1_000_000

LUA_SOURCE = r"""
local yield_command, kernel = ...
local os_date, sformat = os.date, string.format   -- captured now: user code cannot swap them later
local NS_PER_MS, NS_PER_S = 1000000, 1000000000
local M = {}

-- Duration ----------------------------------------------------------------
local Duration = {__name = "flowctl.Duration"}
Duration.__index = Duration

local function duration(ns)
    return setmetatable({ns = ns}, Duration)
end

local function is_duration(v)
    return getmetatable(v) == Duration
end

-- to_ns(v): a Duration, a number of milliseconds or a string like "1h30m" -> nanoseconds
local function to_ns(v, what)
    if is_duration(v) then
        return v.ns
    elseif math.type(v) == "integer" then
        return v * NS_PER_MS
    elseif type(v) == "number" then
        return math.floor(v * NS_PER_MS + 0.5)
    elseif type(v) == "string" then
        local ok, ns = yield_command({op = "time.parse_duration", text = v, what = what})
        if not ok then error(ns, 3) end
        return ns
    end
    error(what .. ": expected a duration (\"5s\", milliseconds or a time.Duration), got " .. type(v), 3)
end

local function scale(d, n)
    if math.type(n) == "integer" then return duration(d.ns * n) end
    return duration(math.floor(d.ns * n + 0.5))
end

Duration.__mul = function(a, b)
    if is_duration(a) and type(b) == "number" then return scale(a, b) end
    if is_duration(b) and type(a) == "number" then return scale(b, a) end
    error("a Duration can only be multiplied by a number", 2)
end
Duration.__div = function(a, b)
    if is_duration(a) and is_duration(b) then return a.ns / b.ns end
    if is_duration(a) and type(b) == "number" then return duration(a.ns // b) end
    error("a Duration can only be divided by a number or a Duration", 2)
end
Duration.__add = function(a, b) return duration(to_ns(a, "duration") + to_ns(b, "duration")) end
Duration.__sub = function(a, b) return duration(to_ns(a, "duration") - to_ns(b, "duration")) end
Duration.__unm = function(a) return duration(-a.ns) end
Duration.__eq = function(a, b) return is_duration(a) and is_duration(b) and a.ns == b.ns end
Duration.__lt = function(a, b) return to_ns(a, "duration") < to_ns(b, "duration") end
Duration.__le = function(a, b) return to_ns(a, "duration") <= to_ns(b, "duration") end

function Duration:nanoseconds() return self.ns end
function Duration:microseconds() return self.ns // 1000 end
function Duration:milliseconds() return self.ns // NS_PER_MS end
function Duration:seconds() return self.ns / NS_PER_S end
function Duration:minutes() return self.ns / (60 * NS_PER_S) end
function Duration:hours() return self.ns / (3600 * NS_PER_S) end

-- Go-style text: 1h30m0s, 1.5s, 250ms
Duration.__tostring = function(d)
    local ns = d.ns
    if ns == 0 then return "0s" end
    local sign = ns < 0 and "-" or ""
    ns = math.abs(ns)
    if ns < NS_PER_S then
        if ns % NS_PER_MS == 0 then return sign .. (ns // NS_PER_MS) .. "ms" end
        if ns % 1000 == 0 then return sign .. (ns // 1000) .. "us" end
        return sign .. ns .. "ns"
    end
    local h, rest = ns // (3600 * NS_PER_S), ns % (3600 * NS_PER_S)
    local m, s = rest // (60 * NS_PER_S), rest % (60 * NS_PER_S)
    local secs = (s % NS_PER_S == 0) and tostring(s // NS_PER_S)
        or string.format("%.9f", s / NS_PER_S):gsub("0+$", "")
    if h > 0 then return string.format("%s%dh%dm%ss", sign, h, m, secs) end
    if m > 0 then return string.format("%s%dm%ss", sign, m, secs) end
    return sign .. secs .. "s"
end

M.NANOSECOND = duration(1)
M.MICROSECOND = duration(1000)
M.MILLISECOND = duration(NS_PER_MS)
M.SECOND = duration(NS_PER_S)
M.MINUTE = duration(60 * NS_PER_S)
M.HOUR = duration(3600 * NS_PER_S)

function M.parse_duration(text)
    if type(text) ~= "string" then
        error("time.parse_duration: expected a string like \"1h30m\", got " .. type(text), 2)
    end
    local ok, ns = yield_command({op = "time.parse_duration", text = text, what = "time.parse_duration"})
    if not ok then error(ns, 2) end
    return duration(ns)
end

-- Time ----------------------------------------------------------------------
local Time = {__name = "flowctl.Time"}
Time.__index = Time

local function new_time(ns)
    return setmetatable({ns = ns}, Time)
end

local function is_time(v)
    return getmetatable(v) == Time
end

function Time:sub(other)
    if is_time(other) then return duration(self.ns - other.ns) end
    return new_time(self.ns - to_ns(other, "Time:sub"))
end
function Time:add(d) return new_time(self.ns + to_ns(d, "Time:add")) end
function Time:unix() return self.ns // NS_PER_S end
function Time:unix_milli() return self.ns // NS_PER_MS end
function Time:unix_nano() return self.ns end
function Time:before(other) return self.ns < other.ns end
function Time:after(other) return self.ns > other.ns end
function Time:equal(other) return self.ns == other.ns end
function Time:format_rfc3339()
    local secs, frac = self.ns // NS_PER_S, self.ns % NS_PER_S
    local text = os_date("!%Y-%m-%dT%H:%M:%S", secs)
    if frac ~= 0 then text = text .. (sformat(".%09d", frac):gsub("0+$", "")) end
    return text .. "Z"
end
Time.__eq = function(a, b) return is_time(a) and is_time(b) and a.ns == b.ns end
Time.__lt = function(a, b) return a.ns < b.ns end
Time.__le = function(a, b) return a.ns <= b.ns end
Time.__sub = function(a, b) return a:sub(b) end
Time.__add = function(a, b) return a:add(b) end
Time.__tostring = function(t) return t:format_rfc3339() end

function M.now()
    local ok, ns = yield_command({op = "time.now"})
    if not ok then error(ns, 2) end
    return new_time(ns)
end

function M.unix(seconds, nanos)
    return new_time(seconds * NS_PER_S + (nanos or 0))
end

function M.since(t)
    return M.now():sub(t)
end

function M.sleep(d)
    local ns = to_ns(d, "time.sleep")
    local ok, err = yield_command({op = "time.sleep", ns = ns})
    if not ok then error(err, 2) end
end

-- time.after(d): a channel that receives the workflow time once, when a durable timer fires
-- (use it in channel.select for timeouts).
function M.after(d)
    local ns = to_ns(d, "time.after")
    local ok, id = yield_command({op = "time.after", ns = ns})
    if not ok then error(id, 2) end
    return kernel.new_channel(id, new_time)
end

M.Duration = {is = is_duration, from_nanoseconds = duration}
M.Time = {is = is_time}
return M
"""


def handlers(run: WorkflowRun) -> dict[str, Handler]:
    """Command handlers for the time module, bound to one workflow run."""

    def now(_cmd: Any) -> Reply:
        return (workflow.time_ns(),)

    def parse(cmd: Any) -> Reply:
        what = cmd["what"] or "duration"
        try:
            delta = parse_duration(cmd["text"], what=what)
        except FlowError as exc:
            raise ShimError(f"{exc.message} ({exc.hint})" if exc.hint else exc.message) from None
        return (_ns(delta),)

    def format_rfc3339(cmd: Any) -> Reply:
        ns = int(cmd["ns"])
        moment = datetime.fromtimestamp(ns // 1_000_000_000, UTC)
        fraction = ns % 1_000_000_000
        text = moment.strftime("%Y-%m-%dT%H:%M:%S")
        if fraction:
            text += ("." + f"{fraction:09d}").rstrip("0")
        return (text + "Z",)

    def sleep(cmd: Any) -> Reply | Blocking:
        ns = _checked_ns(cmd["ns"], "time.sleep")
        if ns == 0:
            return ()
        return Blocking(_timer(ns))

    def after(cmd: Any) -> Reply:
        ns = _checked_ns(cmd["ns"], "time.after")
        channel = run.driver.new_channel(1)

        async def fire() -> None:
            await _timer(ns)
            channel.put(workflow.time_ns())

        run.driver.start_background(fire())
        return (channel.id,)

    return {
        "time.now": now,
        "time.parse_duration": parse,
        "time.format_rfc3339": format_rfc3339,
        "time.sleep": sleep,
        "time.after": after,
    }


async def _timer(ns: int) -> Reply:
    """A durable timer; replies with the workflow time at which it fired."""
    if ns > 0:
        await workflow.sleep(timedelta(microseconds=ns / 1000))
    return (workflow.time_ns(),)


def _checked_ns(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ShimError(f"{what}: expected a duration")
    if value < 0:
        raise ShimError(f"{what}: duration must not be negative (got {value // NS_PER_MS}ms)")
    return value


def _ns(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000

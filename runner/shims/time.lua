-- The Lua half of the `time` module (its Python half: time.py): Durations and Times are
-- integer nanoseconds in objects whose metamethods make `5 * time.SECOND`, `t1:sub(t0)`
-- and `d1 < d2` read naturally. Those metamethods and the objects' methods are built the
-- first time a run uses one (below the `--- on demand ---` line): most runs only sleep.
local build, kit, kernel = ...
local call, class, setmetatable = kit.call, kit.class, kit.setmetatable
local field, describe, rawget, is_a = kit.field, kit.describe, kit.rawget, kit.is_a
local type, error = kit.type, kit.error
local mtype, mfloor = kit.math_type, kit.floor
local NS_PER_MS, NS_PER_S = 1000000, 1000000000
local M = {}

-- A type whose objects hold integer nanoseconds: its methods, metatable, constructor and test.
local function nanoseconds_type(name)
    local methods, mt = class(name)
    local function make(ns) return setmetatable({ns = ns}, mt) end
    local function test(v) return is_a(v, mt) end
    return methods, mt, make, test
end

-- Duration ----------------------------------------------------------------
local Duration, DurationMT, duration, is_duration = nanoseconds_type("flowctl.Duration")
local Time, TimeMT, new_time, is_time = nanoseconds_type("flowctl.Time")

-- to_ns(v): a Duration, a number of milliseconds or a string like "1h30m" -> nanoseconds
local function to_ns(v, what)
    if is_duration(v) then
        -- read raw and checked: user code can rawset anything into a Duration's ns
        local ns = field(v, "ns", "integer")
        if ns == nil then
            error(what .. ": this Duration was changed (its ns is " .. describe(rawget(v, "ns"))
                .. ", not an integer); make a new one, e.g. 5 * time.SECOND", 3)
        end
        return ns
    elseif mtype(v) == "integer" then
        return v * NS_PER_MS
    elseif type(v) == "number" then
        return mfloor(v * NS_PER_MS + 0.5)
    elseif type(v) == "string" then
        local ns = call({op = "time.parse_duration", text = v, what = what}, 3)
        return ns
    end
    error(what .. ": expected a duration (\"5s\", milliseconds or a time.Duration), got " .. type(v), 3)
end

-- Their arithmetic, comparisons, text and methods: built (below) the first time one is used.
local function build_rest()
    build(kit, to_ns, Duration, DurationMT, duration, is_duration, Time, TimeMT, new_time, is_time)
end
kit.later(build_rest, Duration, DurationMT, {"__mul", "__div", "__add", "__sub", "__unm", "__eq", "__lt", "__le",
                                             "__tostring"})
kit.later(build_rest, Time, TimeMT, {"__eq", "__lt", "__le", "__sub", "__add", "__tostring"})

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
    local ns = call({op = "time.parse_duration", text = text, what = "time.parse_duration"})
    return duration(ns)
end

-- Time ----------------------------------------------------------------------
function M.now()
    return new_time(call({op = "time.now"}))
end

function M.unix(seconds, nanos)
    return new_time(seconds * NS_PER_S + (nanos or 0))
end

function M.since(t)
    return M.now():sub(t)
end

function M.sleep(d)
    local ns = to_ns(d, "time.sleep")
    call({op = "time.sleep", ns = ns})
end

-- time.after(d): a channel that receives the workflow time once, when a durable timer fires
-- (use it in channel.select for timeouts).
function M.after(d)
    local ns = to_ns(d, "time.after")
    local id = call({op = "time.after", ns = ns})
    return kernel.new_channel(id, new_time)
end

M.Duration = {is = is_duration, from_nanoseconds = duration}
M.Time = {is = is_time}
do return M end        -- (in a block: the rest of the file is a chunk of its own)

--- on demand ---
-- Durations' and Times' arithmetic, comparisons, text and methods (kit.later, above): the part
-- above passes what they use.
local kit, to_ns, Duration, DurationMT, duration, is_duration, Time, TimeMT, new_time, is_time = ...
local type, error, tostring = kit.type, kit.error, kit.tostring
local mtype, mfloor, mabs = kit.math_type, kit.floor, kit.abs
local sformat, sgsub = kit.format, kit.gsub
local os_date = kit.os_date
local NS_PER_MS, NS_PER_S = 1000000, 1000000000

local function scale(d, n)
    if mtype(n) == "integer" then return duration(d.ns * n) end
    return duration(mfloor(d.ns * n + 0.5))
end

DurationMT.__mul = function(a, b)
    if is_duration(a) and type(b) == "number" then return scale(a, b) end
    if is_duration(b) and type(a) == "number" then return scale(b, a) end
    error("a Duration can only be multiplied by a number", 2)
end
DurationMT.__div = function(a, b)
    if is_duration(a) and is_duration(b) then return a.ns / b.ns end
    if is_duration(a) and type(b) == "number" then return duration(a.ns // b) end
    error("a Duration can only be divided by a number or a Duration", 2)
end
DurationMT.__add = function(a, b) return duration(to_ns(a, "duration") + to_ns(b, "duration")) end
DurationMT.__sub = function(a, b) return duration(to_ns(a, "duration") - to_ns(b, "duration")) end
DurationMT.__unm = function(a) return duration(-a.ns) end
DurationMT.__eq = function(a, b) return is_duration(a) and is_duration(b) and a.ns == b.ns end
DurationMT.__lt = function(a, b) return to_ns(a, "duration") < to_ns(b, "duration") end
DurationMT.__le = function(a, b) return to_ns(a, "duration") <= to_ns(b, "duration") end

function Duration:nanoseconds() return self.ns end
function Duration:microseconds() return self.ns // 1000 end
function Duration:milliseconds() return self.ns // NS_PER_MS end
function Duration:seconds() return self.ns / NS_PER_S end
function Duration:minutes() return self.ns / (60 * NS_PER_S) end
function Duration:hours() return self.ns / (3600 * NS_PER_S) end

-- Go-style text: 1h30m0s, 1.5s, 250ms
DurationMT.__tostring = function(d)
    local ns = d.ns
    if ns == 0 then return "0s" end
    local sign = ns < 0 and "-" or ""
    ns = mabs(ns)
    if ns < NS_PER_S then
        if ns % NS_PER_MS == 0 then return sign .. (ns // NS_PER_MS) .. "ms" end
        if ns % 1000 == 0 then return sign .. (ns // 1000) .. "us" end
        return sign .. ns .. "ns"
    end
    local h, rest = ns // (3600 * NS_PER_S), ns % (3600 * NS_PER_S)
    local m, s = rest // (60 * NS_PER_S), rest % (60 * NS_PER_S)
    local secs = (s % NS_PER_S == 0) and tostring(s // NS_PER_S)
        or sgsub(sformat("%.9f", s / NS_PER_S), "0+$", "")
    if h > 0 then return sformat("%s%dh%dm%ss", sign, h, m, secs) end
    if m > 0 then return sformat("%s%dm%ss", sign, m, secs) end
    return sign .. secs .. "s"
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
    if frac ~= 0 then text = text .. (sgsub(sformat(".%09d", frac), "0+$", "")) end
    return text .. "Z"
end
TimeMT.__eq = function(a, b) return is_time(a) and is_time(b) and a.ns == b.ns end
TimeMT.__lt = function(a, b) return a.ns < b.ns end
TimeMT.__le = function(a, b) return a.ns <= b.ns end
TimeMT.__sub = function(a, b) return a:sub(b) end
TimeMT.__add = function(a, b) return a:add(b) end
TimeMT.__tostring = function(t) return t:format_rfc3339() end

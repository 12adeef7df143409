-- os: time, clock and date come from the driver (workflow time in workflows), never from
-- the machine's clock, and dates are always UTC, so a replay sees what the run saw. The
-- functions are built (below the `--- on demand ---` line) the first time a run calls one.

local now_ns = 0           -- workflow (or wall) time, set by the driver before every resume
local start_ns = nil

-- set_now(ns): the time the code about to resume sees (the first call also starts os.clock)
function set_now(ns)
    now_ns = ns
    if start_ns == nil then start_ns = ns end
end

local function clock()
    return now_ns, start_ns
end

local functions
-- (tail calls: an error os.time or os.date raises at level 2 is at the line that called it)
local function later(name)
    return function(...)
        functions = functions or build_part("60_os", raw_error, raw_type, mfloor, ssub, os_date, clock)
        return functions[name](...)
    end
end
sb_os = {time = later("time"), clock = later("clock"), date = later("date")}

--- on demand ---
-- os.time, os.clock and os.date (above): what they use comes from the prelude, as arguments;
-- clock() is the driver's time now and when the run started.
local raw_error, raw_type, mfloor, ssub, os_date, clock = ...

local function now_seconds()
    return clock() // 1000000000
end

local function days_from_civil(y, m, d)
    y = m <= 2 and y - 1 or y
    local era = (y >= 0 and y or y - 399) // 400
    local yoe = y - era * 400
    local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
    local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468
end

local os = {}
function os.time(t)
    if t == nil then return now_seconds() end
    if raw_type(t) ~= "table" then raw_error("bad argument #1 to 'time' (table expected)", 2) end
    local function field(k, default)
        local v = t[k]
        if v == nil then
            if default == nil then raw_error("field '" .. k .. "' missing in date table", 3) end
            return default
        end
        return mfloor(v)
    end
    -- date tables are read as UTC: the machine's time zone must not change a replay
    local days = days_from_civil(field("year"), field("month"), field("day"))
    return days * 86400 + field("hour", 12) * 3600 + field("min", 0) * 60 + field("sec", 0)
end
function os.clock()
    local now_ns, start_ns = clock()
    return (now_ns - (start_ns or now_ns)) / 1e9
end
function os.date(fmt, t)
    fmt = fmt or "%c"
    if raw_type(fmt) ~= "string" then raw_error("bad argument #1 to 'date' (string expected)", 2) end
    if ssub(fmt, 1, 1) ~= "!" then fmt = "!" .. fmt end      -- always UTC
    return os_date(fmt, t or now_seconds())
end
return os

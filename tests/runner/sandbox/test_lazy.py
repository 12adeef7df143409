"""Parts of flowctl's Lua built on demand (docs/performance.md, What is built on demand).

A run builds a part (the rest of the time module's Durations and Times, channels at work,
executors' other methods, setmetatable's rules, os.*, errors.new, the counted pattern matcher)
the first time it needs it, from bytecode the process compiled once. A run that does not need
a part never builds it, a run builds each part at most once, every runtime builds its own, and
what a part does is the same whether it was built early (by a query, say) or on the spot.
"""

from __future__ import annotations

from typing import Any

import pytest

from runner.sandbox import runtime
from tests.support.sandboxes import run_main, shim_run

MODULES = ["time", "channel", "funcs", "errors", "json"]

#: part -> what builds it (the first use in a run), and what that returns
FIRST_USES: dict[str, tuple[str, Any]] = {
    "time": ("return tostring(90 * time.MINUTE)", "1h30m0s"),
    "channel": ("local ch = channel.new(1) ch:send(7) return (ch:receive())", 7),
    "funcs": ("return getmetatable(funcs.new():with_options({}))", "flowctl.Executor"),
    "25_metatables": ("return getmetatable(setmetatable({}, {__metatable = 'locked'}))", "locked"),
    "60_os": ("return os.date('!%Y-%m-%d', 86400)", "1970-01-02"),
    "40_errors": ("return errors.new({kind = 'NOT_FOUND', message = 'm'}):kind()", "NOT_FOUND"),
    "on_demand": ("return string.match('abc123', '%d+')", "123"),
    "50_json_encode": ("return json.encode({1.5, 'a\\n'})", '[1.5,"a\\n"]'),
}

#: builds every part without sending a command
BUILD_ALL = """
local _ = 2 * time.SECOND
pcall(channel.select, nil)
local _ = funcs.new().with_options
setmetatable({}, nil)
os.time()
errors.new("x")
string.match("a", "a+")
json.encode(1)
"""

#: what each part does: results and errors (with the line they name, so never in a tail call), as text
CASES = """local out = {}
local function case(name, f)
    local ok, value = pcall(f)
    out[#out + 1] = name .. " = " .. (ok and "" or "error: ") .. tostring(value)
end
case("mul", function() local v = 90 * time.MINUTE return v end)
case("div", function() local v = time.SECOND / 4 return v end)
case("ratio", function() local v = time.MINUTE / time.SECOND return v end)
case("add", function() local v = time.SECOND + 500 return v end)
case("sub", function() local v = time.SECOND - time.MILLISECOND return v end)
case("unm", function() local v = -time.SECOND return v end)
case("eq", function() local v = time.SECOND == 1000 * time.MILLISECOND return v end)
case("lt", function() local v = time.SECOND < time.MINUTE return v end)
case("le", function() local v = time.SECOND <= 1000 return v end)
case("methods", function() local v = time.HOUR:minutes() .. " " .. time.SECOND:milliseconds() return v end)
case("no method", function() local v = time.SECOND.nothing == nil return v end)
case("mul error", function() local v = time.SECOND * "x" return v end)
case("add error", function() local v = time.SECOND + {} return v end)
case("time", function() local v = time.unix(1, 5) return v end)
case("time sub", function() local v = time.unix(10):sub(time.unix(4)) return v end)
case("time add", function() local v = time.unix(10):add(1500):unix_milli() return v end)
case("time order", function()
    local v = tostring(time.unix(1) < time.unix(2)) .. tostring(time.unix(3) == time.unix(3)) return v end)
case("channel", function() local ch = channel.new(2) ch:send("a") ch:close() return (ch:receive()) end)
case("channel select", function()
    local v = channel.select({channel.new(1):case_receive(), default = true}).default return v end)
case("channel new error", function() local v = channel.new("x") return v end)
case("channel method error", function() local v = channel.new(1).send(5) return v end)
case("select error", function() local v = channel.select(5) return v end)
case("executor", function()
    local v = getmetatable(funcs.new():with_options({start_to_close_timeout = 5 * time.SECOND})) return v end)
case("executor error", function() local v = funcs.new():with_options(5) return v end)
case("async error", function() local v = funcs.async(5) return v end)
case("gc refused", function() local v = setmetatable({}, {__gc = true}) return v end)
case("late gc refused", function() local mt = {} setmetatable({}, mt) local v = rawset(mt, "__gc", print) return v end)
case("rawset", function() local t = {} rawset(t, "__gc", 1) return t.__gc end)
case("not a metatable", function() local v = setmetatable({}, time.SECOND) return v end)
case("chain", function()
    local t = {}
    for _ = 1, 12 do t = setmetatable({}, {__index = t}) end
    return t
end)
case("os.time", function() local v = os.time({year = 2024, month = 1, day = 2}) return v end)
case("os.time now", function() local v = os.time() return v end)
case("os.clock", function() local v = os.clock() return v end)
case("os.date", function() local v = os.date("%Y-%m-%d %H:%M", 3600) return v end)
case("os.time error", function() local v = os.time(5) return v end)
case("os.time field", function() local v = os.time({year = 2024}) return v end)
case("errors.new", function()
    local e = errors.new("boom") return e:kind() .. " " .. e:message() .. " " .. e:where() end)
case("errors.new error", function() local v = errors.new(5) return v end)
case("errors.new kind", function() local v = errors.new({kind = "bad"}) return v end)
case("match", function() local v = string.match("abc123", "%d+") return v end)
case("gsub", function() local v = (string.gsub("hello", "l", "L")) return v end)
case("find error", function() local v = string.find("abc", "(") return v end)
case("json.encode", function()
    local v = json.encode({b = {1, 2.5, 1e300, json.null}, a = "q\\"\\1\\n", c = json.object()}) return v end)
case("json.encode error", function() local v, err = json.encode({1, nil, 3}) return err:message() end)
return table.concat(out, "\\n")
"""


async def test_a_run_that_needs_no_part_builds_none(built: list[str]) -> None:
    run = shim_run(MODULES)
    assert await run_main(run, """
        local list, object = {}, {}
        table.insert(list, 1, "x")
        rawset(object, "k", 1)
        return time.Duration.is(time.SECOND), channel.is_channel(time.SECOND), errors.is(nil),
            list[1] .. object.k, string.find("a,b", ",", 1, true), ("ab"):rep(2), pcall(error, "x")
    """) == (True, False, False, "x1", 2, "abab", False, "x")
    assert run.sandbox.export(run.sandbox.lua.eval("{{'x'}, {k = 1}}")) == [["x"], {"k": 1}]  # no JSON text
    assert built == []


@pytest.mark.parametrize("part", sorted(FIRST_USES))
async def test_a_part_is_built_on_first_use_and_once(built: list[str], part: str) -> None:
    body, expected = FIRST_USES[part]
    run = shim_run(MODULES)
    assert await run_main(run, body) == (expected,)
    assert await run_main(run, body) == (expected,)
    assert built == [part]


async def test_what_a_part_does_is_the_same_built_early_or_on_the_spot(built: list[str]) -> None:
    on_the_spot = await run_main(shim_run(MODULES), CASES)
    assert sorted(built) == sorted(FIRST_USES)
    early = shim_run(MODULES)
    await run_main(early, BUILD_ALL)
    built.clear()
    assert await run_main(early, CASES) == on_the_spot
    assert built == []
    lines = on_the_spot[0].split("\n")
    # the errors a part raises name the user's line, as Lua's own functions do (and as the
    # parts did when they were built with the module: this is what they answered then)
    assert [line for line in lines if "error: " in line] == [
        "mul error = error: wf.lua:18: a Duration can only be multiplied by a number",
        "add error = error: wf.lua:19: duration: expected a duration (\"5s\", milliseconds or a "
        "time.Duration), got table",
        "channel new error = error: wf.lua:28: channel.new: the buffer size must be an integer, got string",
        "channel method error = error: wf.lua:29: ch:send: expected a channel, got an integer",
        "select error = error: wf.lua:30: channel.select: expected a table of cases, got number",
        "executor error = error: wf.lua:33: with_options: expected a table of activity.* options, got number",
        "async error = error: wf.lua:34: funcs.async: the first argument must be an activity entry ID like "
        "\"app:charge_payment\", got number",
        "gc refused = error: wf.lua:35: setmetatable: __gc finalizers are not allowed in the sandbox (they "
        "run at garbage-collection time, which is not deterministic)",
        "late gc refused = error: wf.lua:36: rawset: __gc finalizers are not allowed in the sandbox (they "
        "run at garbage-collection time, which is not deterministic)",
        "not a metatable = error: wf.lua:38: setmetatable: a flowctl.Duration cannot be used as a metatable",
        "chain = error: wf.lua:41: setmetatable: this would chain more than 10 tables through __index (each "
        "lookup walks all of them at once); copy the fields into fewer tables",
        "os.time error = error: wf.lua:48: bad argument #1 to 'time' (table expected)",
        "os.time field = error: wf.lua:49: field 'month' missing in date table",
        "errors.new error = error: wf.lua:52: errors.new: expected {kind = ..., message = ...} or a message "
        "string, got number",
        "errors.new kind = error: wf.lua:53: errors.new: kind must be an UPPER_SNAKE_CASE string like "
        "\"NOT_FOUND\", got bad",
        "find error = error: wf.lua:56: unfinished capture",
    ]
    assert [line for line in lines if "error: " not in line] == [
        "mul = 1h30m0s",
        "div = 250ms",
        "ratio = 60.0",
        "add = 1.5s",
        "sub = 999ms",
        "unm = -1s",
        "eq = true",
        "lt = true",
        "le = true",
        "methods = 60.0 1000",
        "no method = true",
        "time = 1970-01-01T00:00:01.000000005Z",
        "time sub = 6s",
        "time add = 11500",
        "time order = truetrue",
        "channel = a",
        "channel select = true",
        "executor = flowctl.Executor",
        "rawset = 1",
        "os.time = 1704196800",
        "os.time now = 1700000000",
        "os.clock = 0.0",
        "os.date = 1970-01-01 01:00",
        "errors.new = INTERNAL boom wf.lua:51",
        "match = 123",
        "gsub = heLLo",
        'json.encode = {"a":"q\\"\\u0001\\n","b":[1,2.5,1e+300,null],"c":{}}',
        "json.encode error = json.encode: value: array has holes (index 3 but only 2 items); fill them with "
        "json.null or use string keys",
    ]


async def test_every_runtime_builds_its_own_parts(built: list[str]) -> None:
    first, second = shim_run(MODULES), shim_run(MODULES)
    assert await run_main(first, FIRST_USES["time"][0]) == ("1h30m0s",)
    assert await run_main(second, FIRST_USES["time"][0]) == ("1h30m0s",)
    # the process shares a part's bytecode (immutable bytes), never a Lua object
    assert built == ["time", "time"]
    assert all(isinstance(code, bytes) for code in runtime._PARTS.values())


def test_user_code_starts_on_a_collected_heap_and_the_generational_collector() -> None:
    box = shim_run(["time", "funcs"]).sandbox
    box.entrypoint("return {main = function() end}", "wf.lua", "main")
    held = box.memory_used()
    # (collectgarbage, the real one in the runtime's own globals, answers the mode it leaves)
    assert box.lua.execute("return collectgarbage('generational')") == "generational"
    box.lua.execute("collectgarbage()")
    assert held - box.memory_used() < 2048   # the setup's garbage (the prelude's main chunk...) is gone

"""The ``channel`` module as workflow code sees it: channel objects, cases and ``channel.select``.

The driver's side (buffering, wake-up order) is tests/runner/sandbox/test_channels.py; here
the Lua objects on top of it, between real Lua coroutines, without a server.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.sandboxes import lua_error, run_main, shim_run


async def lua(body: str) -> Any:
    """What ``body`` returns, as plain data (``channel`` listed)."""
    run = shim_run(["channel"])
    (value,) = await run_main(run, body)
    return run.sandbox.export(value)


async def test_send_and_receive_between_coroutines() -> None:
    assert await lua("""
local ch, done = channel.new(), channel.new(1)
local got = {}
coroutine.spawn(function()
    for _ = 1, 3 do got[#got + 1] = ch:receive() end
    done:send(true)
end)
for i = 1, 3 do ch:send(i * 10) end
done:receive()
return got
""") == [10, 20, 30]


async def test_receive_reports_closed_and_drained() -> None:
    assert await lua("""
local ch = channel.new(2)
ch:send("a")
ch:close()
local v1, ok1 = ch:receive()
local v2, ok2 = ch:receive()
return {v1, ok1, v2 == nil, ok2, channel.is_channel(ch), channel.is_channel({id = ch.id})}
""") == ["a", True, True, False, True, False]


async def test_select_returns_the_ready_case_with_its_channel() -> None:
    assert await lua("""
local a, b = channel.new(1), channel.new(1)
b:send("from b")
local r = channel.select{a:case_receive(), b:case_receive()}
local s = channel.select{a:case_send("to a"), b:case_receive()}
local d = channel.select{b:case_receive(), default = true}
return {r.channel == b, r.value, r.ok, s.channel == a, s.ok, a:receive(), d.default, d.ok}
""") == [True, "from b", True, True, True, "to a", True, False]


async def test_select_waits_for_the_first_case_that_becomes_ready() -> None:
    assert await lua("""
local slow, fast = channel.new(), channel.new()
coroutine.spawn(function() fast:send("fast") end)
local r = channel.select{slow:case_receive(), fast:case_receive()}
return {r.channel == fast, r.value}
""") == [True, "fast"]


@pytest.mark.parametrize(("statement", "message"), [
    ("channel.new(1.5)", "wf.lua:3: channel.new: the buffer size must be an integer, got number"),
    ("channel.new(-1)", "wf.lua:3: channel.new: the buffer size must be a non-negative integer"),
    ("channel.select('x')", "wf.lua:3: channel.select: expected a table of cases, got string"),
    ("channel.select{channel.new()}", "wf.lua:3: channel.select: case 1 is not a channel case "
                                      "(use ch:case_receive() or ch:case_send(v))"),
    ("channel.select{}", "wf.lua:3: channel.select: no cases and no default (it would wait forever)"),
    ("local ch = channel.new(); ch:close(); ch:send(1)", "wf.lua:3: send on a closed channel"),
    ("local ch = channel.new(); ch:close(); ch:close()", "wf.lua:3: close of a closed channel"),
])
async def test_misuse_fails_at_the_callers_line(statement: str, message: str) -> None:
    assert await lua_error(shim_run(["channel"]), statement) == message


async def test_the_channel_global_exists_only_when_listed() -> None:
    (value,) = await run_main(shim_run(["time"]), "return channel")
    assert value is None

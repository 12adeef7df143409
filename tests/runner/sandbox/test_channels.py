"""runner.sandbox.channels: Go-style channels between the Lua threads of one run (docs/lua-api.md).

Most cases run real Lua threads under the driver, with the raw ``channel.*`` commands the
``channel`` shim sends, and check the exact order things happen in: a replay must wake
threads in the same order as the original run. The last few drive :class:`Channel` directly
(deliveries from outside Lua, stale select waiters), with strings standing in for threads.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from runner.sandbox.channels import Channel, ChannelError, Select
from runner.sandbox.driver import Blocking, Reply, WorkflowDriver
from tests.support.sandboxes import command_sandbox, drive, workflow_main

#: raw channel commands as Lua helpers (what the channel shim does, without its objects)
CHANNELS = """
local trace = {}
local function log(text) trace[#trace + 1] = text end
local function new(size) return cmd.call{op = "channel.new", size = size} end
local function send(id, value) return cmd.call{op = "channel.send", id = id, value = value} end
local function receive(id) return cmd.call{op = "channel.receive", id = id} end
local function close(id) return cmd.call{op = "channel.close", id = id} end
local function select(cases, default)
    return cmd.call{op = "channel.select", cases = cases, n = #cases, default = default or false}
end
-- settle(): every thread queued before this one runs until it waits, then this one goes on
local function settle()
    local turn = new(0)
    coroutine.spawn(function() send(turn, 0) end)
    receive(turn)
end
"""


async def run_channels(body: str) -> Any:
    (result,) = await drive(CHANNELS + body)
    return result


# ---------------------------------------------------------------------------------- unbuffered, buffered

async def test_an_unbuffered_send_waits_for_a_receiver() -> None:
    trace = await run_channels("""
local ch = new(0)
coroutine.spawn(function()
    for i = 1, 3 do send(ch, i); log("sent " .. i) end
end)
for _ = 1, 3 do local v, ok = receive(ch); log("got " .. v .. " " .. tostring(ok)) end
return table.concat(trace, ", ")
""")
    assert trace == "sent 1, got 1 true, got 2 true, sent 2, sent 3, got 3 true"


async def test_a_buffered_send_waits_only_when_the_buffer_is_full() -> None:
    trace = await run_channels("""
local ch = new(2)
coroutine.spawn(function()
    for i = 1, 4 do send(ch, i); log("sent " .. i) end
end)
settle()   -- the sender fills the buffer first
for _ = 1, 4 do log("got " .. receive(ch)) end
return table.concat(trace, ", ")
""")
    # receiving 1 moves the parked sender's 3 into the buffer and queues the sender behind main
    assert trace == "sent 1, sent 2, got 1, got 2, got 3, sent 3, sent 4, got 4"


async def test_receivers_are_served_first_come_first_served() -> None:
    trace = await run_channels("""
local ch, done = new(0), new(3)
for _, name in ipairs({"a", "b", "c"}) do
    coroutine.spawn(function() log(name .. " got " .. receive(ch)); send(done, name) end)
end
for i = 1, 3 do send(ch, i) end
for _ = 1, 3 do receive(done) end
return table.concat(trace, ", ")
""")
    assert trace == "a got 1, b got 2, c got 3"


async def test_values_cross_unchanged_including_nil_and_tables() -> None:
    result = await run_channels("""
local ch = new(3)
send(ch, nil); send(ch, {1, {x = "y"}}); send(ch, "s")
local a, ok_a = receive(ch)
local b = receive(ch)
local c = receive(ch)
return {a == nil, ok_a, b[2].x, c}
""")
    assert list(result.values()) == [True, True, "y", "s"]


async def test_a_bad_buffer_size_or_channel_id_is_a_lua_error() -> None:
    result = await run_channels("""
local _, e1 = pcall(new, -1)
local _, e2 = pcall(new, 1.5)
local _, e3 = pcall(send, 99, 1)
return {e1, e2, e3}
""")
    assert list(result.values()) == ["channel.new: the buffer size must be a non-negative integer"] * 2 + [
        "unknown channel 99"]


# ---------------------------------------------------------------------------------- close

async def test_close_drains_the_buffer_then_receives_nil_false() -> None:
    result = await run_channels("""
local ch = new(2)
send(ch, "a"); send(ch, "b"); close(ch)
local out = {}
for _ = 1, 3 do local v, ok = receive(ch); out[#out + 1] = tostring(v) .. "/" .. tostring(ok) end
local _, send_err = pcall(send, ch, "c")
local _, close_err = pcall(close, ch)
return table.concat(out, " ") .. " | " .. send_err .. " | " .. close_err
""")
    assert result == "a/true b/true nil/false | send on a closed channel | close of a closed channel"


async def test_close_wakes_parked_receivers_and_fails_parked_senders() -> None:
    trace = await run_channels("""
local inbox, outbox, done = new(0), new(0), new(4)
for _, name in ipairs({"r1", "r2"}) do
    coroutine.spawn(function()
        local v, ok = receive(inbox); log(name .. " " .. tostring(v) .. " " .. tostring(ok)); send(done, 1)
    end)
end
coroutine.spawn(function()
    local ok, err = pcall(send, outbox, "x"); log("sender " .. tostring(ok) .. " " .. err); send(done, 1)
end)
settle()  -- all three park
close(inbox); close(outbox)
for _ = 1, 3 do receive(done) end
return table.concat(trace, ", ")
""")
    assert trace == "r1 nil false, r2 nil false, sender false send on a closed channel"


# ---------------------------------------------------------------------------------- select

async def test_select_takes_the_first_ready_case_in_written_order() -> None:
    result = await run_channels("""
local a, b = new(1), new(1)
send(a, "from a"); send(b, "from b")
local i1, v1, ok1 = select({{id = b, send = false}, {id = a, send = false}})
local i2, v2 = select({{id = b, send = false}, {id = a, send = false}})
return {i1, v1, ok1, i2, v2}
""")
    assert list(result.values()) == [1, "from b", True, 2, "from a"]


async def test_select_can_send_and_reports_a_ready_send_case() -> None:
    result = await run_channels("""
local full, room = new(1), new(1)
send(full, "x")
local index, value, ok = select({{id = full, send = true, value = 1}, {id = room, send = true, value = 2}})
return {index, value == nil, ok, (receive(room))}
""")
    assert list(result.values()) == [2, True, True, 2]


async def test_select_with_default_returns_zero_when_nothing_is_ready() -> None:
    result = await run_channels("""
local empty = new(0)
local index, value, ok = select({{id = empty, send = false}}, true)
local _, err = pcall(select, {})
return {index, value == nil, ok, err}
""")
    assert list(result.values()) == [0, True, False,
                                     "channel.select: no cases and no default (it would wait forever)"]


async def test_a_parked_select_fires_once_and_leaves_the_other_channel_alone() -> None:
    trace = await run_channels("""
local a, b = new(0), new(1)
coroutine.spawn(function()
    local index, value = select({{id = a, send = false}, {id = b, send = false}})
    log("select " .. index .. " " .. value)
end)
settle()  -- the select parks
send(b, "first"); send(b, "second")   -- the second is buffered, not taken by the finished select
settle()
log("b still holds " .. receive(b))
return table.concat(trace, ", ")
""")
    assert trace == "select 2 first, b still holds second"


async def test_a_closed_channel_is_ready_in_select() -> None:
    result = await run_channels("""
local open, shut = new(0), new(0)
close(shut)
local index, value, ok = select({{id = open, send = false}, {id = shut, send = false}})
return {index, value == nil, ok}
""")
    assert list(result.values()) == [2, True, False]


# ---------------------------------------------------------------------------------- cancellation

async def test_cancellation_fails_threads_parked_on_channels_with_canceled() -> None:
    async def forever() -> Reply:
        await asyncio.Event().wait()
        return ()

    sandbox = command_sandbox()
    driver = WorkflowDriver(sandbox, {"forever": lambda _cmd: Blocking(forever())})
    body = CHANNELS + """
local ch = new(0)
local done = new(1)
coroutine.spawn(function()
    local ok, err = pcall(receive, ch)
    log("receiver " .. tostring(ok) .. " " .. err:kind())
    send(done, 1)
end)
pcall(cmd.call, {op = "forever"})
receive(done)
return table.concat(trace, ", ")
"""
    run = asyncio.create_task(driver.run(workflow_main(sandbox, body)))
    for _ in range(10):
        await asyncio.sleep(0)
    run.cancel()
    assert await run == ("receiver false CANCELED",)


# ---------------------------------------------------------------------------------- Channel on its own

class Woken:
    """A waker that records (thread, reply) in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, tuple[Any, ...]]] = []

    def __call__(self, thread: Any, reply: tuple[Any, ...]) -> None:
        self.calls.append((thread, reply))


def test_put_from_outside_wakes_a_parked_receiver_or_buffers_past_the_capacity() -> None:
    woken = Woken()
    channel = Channel(1, 0, woken)
    assert channel.receive("t1") is None
    channel.put("signal 1")
    channel.put("signal 2")  # nobody waits: kept, even on an unbuffered channel
    assert woken.calls == [("t1", (True, "signal 1", True))]
    assert channel.receive("t2") == (True, "signal 2", True)


def test_an_unbounded_channel_always_accepts_a_send() -> None:
    channel = Channel(1, None, Woken())
    for i in range(100):
        assert channel.can_send()
        assert channel.send("t", i) == (True,)
    assert len(channel.buffer) == 100


def test_a_parked_sender_refills_the_buffer_slot_a_receiver_frees() -> None:
    woken = Woken()
    channel = Channel(1, 1, woken)
    assert channel.send("s1", "a") == (True,)
    assert channel.send("s2", "b") is None
    assert channel.receive("r") == (True, "a", True)
    assert list(channel.buffer) == ["b"]
    assert woken.calls == [("s2", (True,))]


def test_a_select_that_fired_is_skipped_by_every_other_channel() -> None:
    woken = Woken()
    first, second = Channel(1, 0, woken), Channel(2, 0, woken)
    waiting = Select("t")
    assert first.receive("t", select=waiting, case=1) is None
    assert second.receive("t", select=waiting, case=2) is None
    assert second.can_send(), "a live receiver: ready"
    first.put("x")
    assert woken.calls == [("t", (True, 1, "x", True))]
    assert waiting.done
    assert second.can_send() is False, "the stale waiter no longer counts as a receiver"
    second.put("y")
    assert list(second.buffer) == ["y"] and len(woken.calls) == 1


def test_misuse_raises_channel_error() -> None:
    channel = Channel(1, 1, Woken())
    channel.close()
    with pytest.raises(ChannelError, match="close of a closed channel"):
        channel.close()
    with pytest.raises(ChannelError, match="send on a closed channel"):
        channel.send("t", 1)
    assert channel.can_send(), "a send on a closed channel is ready: it fails at once"
    assert channel.can_receive()


def test_interrupt_wakes_every_parked_thread_with_the_reply() -> None:
    woken = Woken()
    channel = Channel(1, 0, woken)
    channel.receive("r1")
    channel.receive("r2")
    other = Channel(2, 0, woken)
    other.send("s1", "v")
    channel.interrupt((False, "canceled"))
    other.interrupt((False, "canceled"))
    assert woken.calls == [("r1", (False, "canceled")), ("r2", (False, "canceled")), ("s1", (False, "canceled"))]
    assert not channel.receivers and not other.senders

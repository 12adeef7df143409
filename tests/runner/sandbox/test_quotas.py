"""docs/sandbox.md, Quotas: what a run may make the worker hold or send for it (issue 13).

The red team's unmetered resources, each ending at its quota with a non-retryable LIMIT_EXCEEDED
naming it and the Lua line that went past it, without the worker's memory growing with the attempt:
300,000 ``channel.new(0)``, 200,000 ``process.listen``, a flood of queued messages, 20,000 commands in
one workflow task; error texts cut to ``error_bytes``. Things that end normally stay unlimited:
closed channels, received timers and finished coroutines stop counting. Real Lua, real driver and
shims; what needs Temporal itself (timers, self-sends, what the server is sent) is in
tests/runner/temporal/test_quotas_e2e.py.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from registry.revision import Revision
from registry.validate import validate_project
from runner.revision_source import ProjectRevisionSource
from runner.sandbox.driver import Blocking, Reply, WorkflowDriver
from runner.sandbox.failures import FlowFailure, LuaRuntimeError
from runner.sandbox.quotas import (
    QuotaExceeded,
    bounded_failure,
    entry_limits,
    narrowed,
    payload_size,
    truncated,
)
from runner.sandbox.runtime import WORKFLOW_LIMITS, SandboxLimits
from runner.shims.run_context import WorkflowRun
from tests.support import sandboxes
from tests.support.paths import ENTRIES
from tests.support.sandboxes import command_sandbox, drive, run_main, shim_run, workflow_main

MODULES = ["process", "channel", "json", "errors", "time"]


def process_run(limits: SandboxLimits = WORKFLOW_LIMITS) -> WorkflowRun:
    """A workflow run of ``app:wf`` with its process state (mailbox, listeners)."""
    return sandboxes.process_run(MODULES, limits=limits)


def rss() -> int:
    """The resident memory of this process now, in bytes (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def stopped_at(run: WorkflowRun, body: str) -> QuotaExceeded:
    with pytest.raises(QuotaExceeded) as stopped:
        await run_main(run, body)
    failure = stopped.value
    assert failure.kind == "LIMIT_EXCEEDED" and failure.retryable is False
    assert failure.details == {"limit": failure.limit}
    return failure


# ---------------------------------------------------------------------- channels


async def test_300k_channels_stop_at_the_channels_quota_without_the_memory() -> None:
    run = shim_run(["channel"])
    before = rss()
    failure = await stopped_at(run, "for i = 1, 300000 do channel.new(0) end")
    grew = rss() - before
    assert failure.limit == "channels" and failure.where == "wf.lua:2"
    assert failure.message == (
        "sandbox channels limit exceeded at wf.lua:2 (10,000 channels alive per run): close channels you are "
        "done with: a channel counts until it is closed and drained (a time.after channel until its value was "
        "received)")
    assert len(run.driver.channels) == 10_000
    assert grew < 100 << 20, f"the worker grew by {grew >> 20} MiB (300,000 channels took 800 MB before the quota)"


async def test_a_channel_closed_and_drained_stops_counting_and_stays_closed() -> None:
    run = shim_run(["channel"])
    (result,) = await run_main(run, """
        for i = 1, 30000 do      -- three times the quota, one alive at a time
            local reply = channel.new(1)
            reply:send(i)
            reply:receive()
            reply:close()
        end
        local ch = channel.new(2)
        ch:send("kept")
        ch:close()               -- closed, still holding a value: alive until it is drained
        local first, ok1 = ch:receive()
        local second, ok2 = ch:receive()
        local sent, send_err = pcall(function() ch:send(1) end)
        local closed, close_err = pcall(function() ch:close() end)
        return {first, ok1, second == nil, ok2, sent, send_err, closed, close_err}
    """)
    assert run.sandbox.export(result, "r") == [
        "kept", True, True, False, False, "wf.lua:14: send on a closed channel", False,
        "wf.lua:15: close of a closed channel"]
    assert len(run.driver.channels) == 0, "every channel was closed and drained: none is kept"


async def test_a_one_shot_channel_is_forgotten_once_its_value_was_taken() -> None:
    # what time.after does: Python puts one value, ever (a timer); once received, a receive waits for ever
    sandbox = command_sandbox()
    driver = WorkflowDriver(sandbox, {})

    def after(_cmd: Any) -> Reply:
        channel = driver.new_channel(1, lua_sends=False, once=True)
        asyncio.get_running_loop().call_soon(driver.deliver, channel, 42, "a timer")
        return (channel.id,)

    driver.handlers["after"] = after
    (result,) = await driver.run(workflow_main(sandbox, """
        local id
        for i = 1, 20000 do  -- twice the channels quota
            id = cmd.call{op = "after"}
            assert(cmd.call{op = "channel.receive", id = id} == 42)
        end
        local index = cmd.call{op = "channel.select", cases = {{id = id}}, n = 1, default = true}
        local closed, err = pcall(function() cmd.call{op = "channel.close", id = id} end)
        return {id, index, closed, err}
    """))
    assert sandbox.export(result, "r") == [-20000, 0, False, (
        "wf.lua:9: ch:close: this channel only receives (time.after, process.listen, process.inbox and "
        "process.events deliver what happens to the workflow; make your own with channel.new)")]
    assert driver.channels == {}


# ---------------------------------------------------------------------- listeners, queued messages


async def test_200k_listeners_stop_at_the_listeners_quota() -> None:
    run = process_run()
    before = rss()
    failure = await stopped_at(run, "for i = 1, 200000 do process.listen('topic-' .. i) end")
    grew = rss() - before
    assert (failure.limit, failure.where) == ("listeners", "wf.lua:2")
    assert failure.message.startswith("sandbox listeners limit exceeded at wf.lua:2 (a new topic would be "
                                      "listener 1,001; the limit is 1,000 process.listen topics per run)")
    assert len(run.process.listeners) == 1_000
    assert grew < 50 << 20, f"the worker grew by {grew >> 20} MiB (200,000 listeners took 572 MB before)"
    (again,) = await run_main(run, "return process.listen('topic-7') ~= nil")
    assert again is True, "listening again to a topic is no new listener"


async def test_values_sent_on_a_channel_stop_at_the_queue_quotas() -> None:
    many = await stopped_at(shim_run(["channel"]), """
        local ch = channel.new(1000000)
        for i = 1, 1000000 do ch:send(i) end""")
    assert (many.limit, many.where) == ("queued_messages", "wf.lua:4")
    assert "(10,001 messages wait; the limit is 10,000 queued messages per run)" in many.message
    big = await stopped_at(shim_run(["channel"]), """
        local ch = channel.new(100)
        for i = 1, 100 do ch:send(string.rep("x", 1 << 20)) end""")
    assert (big.limit, big.where) == ("queued_bytes", "wf.lua:4")
    assert "(17,825,792 bytes of messages wait; the limit is 16,777,216 bytes of queued messages per run)" \
        in big.message


async def test_a_flood_of_signals_stops_the_run_at_the_queue_quota() -> None:
    run = process_run()
    task = asyncio.create_task(run_main(run, "channel.new(0):receive()"))  # waits, listening to nothing
    await asyncio.sleep(0)
    for i in range(10_001):
        run.process.deliver("orders", {"n": i}, "wf-sender")
    with pytest.raises(QuotaExceeded) as stopped:
        await task
    assert (stopped.value.limit, stopped.value.where) == ("queued_messages", "signal 'orders'")
    assert len(run.process.pending) == 10_001, "what arrived is kept: the run stops instead"

    run = process_run()
    task = asyncio.create_task(run_main(run, "process.inbox() channel.new(0):receive()"))
    await asyncio.sleep(0)
    for _ in range(20):
        run.process.deliver("blob", "x" * (1 << 20), None)  # in the inbox's buffer: in the Lua heap
    assert not task.done() and run.driver.queue.bytes == 0 and run.driver.queue.count == 20
    task.cancel()
    with pytest.raises(LuaRuntimeError, match="CANCELED"):
        await task

    run = process_run()
    task = asyncio.create_task(run_main(run, "channel.new(0):receive()"))
    await asyncio.sleep(0)
    for _ in range(20):
        run.process.deliver("blob", "x" * (1 << 20), None)  # in the mailbox: Python holds them
    with pytest.raises(QuotaExceeded) as stopped:
        await task
    assert (stopped.value.limit, stopped.value.where) == ("queued_bytes", "signal 'blob'")


async def test_listening_moves_waiting_messages_out_of_the_byte_count() -> None:
    run = process_run()
    for _ in range(3):
        run.process.deliver("t", "y" * 1000, None)
    assert (run.driver.queue.count, run.driver.queue.bytes) == (3, 3 * 1002)
    (got,) = await run_main(run, "local ch = process.listen('t') ch:receive() return #ch:receive()")
    assert got == 1000
    assert (run.driver.queue.count, run.driver.queue.bytes) == (1, 0), "one left, in the Lua heap"


# ---------------------------------------------------------------------- coroutines


async def test_coroutines_alive_at_once_stop_at_the_coroutines_quota() -> None:
    failure = await stopped_at(shim_run(["channel"]), """
        local never = channel.new(0)
        for i = 1, 1000000 do coroutine.spawn(function() never:receive() end) end""")
    assert (failure.limit, failure.where) == ("coroutines", "wf.lua:4")
    assert "(10,000 coroutines alive at once)" in failure.message


async def test_finished_coroutines_stop_counting() -> None:
    run = shim_run(["channel"])
    (count,) = await run_main(run, """
        local done, n = channel.new(0), 0
        for i = 1, 30000 do
            coroutine.spawn(function() done:send(1) end)
            n = n + done:receive()
        end
        return n""")
    assert count == 30_000
    assert run.driver._spawned == set()


# ---------------------------------------------------------------------- commands per workflow task


def counting_driver(limits: SandboxLimits = WORKFLOW_LIMITS) -> WorkflowDriver:
    """A driver whose ``timer`` command counts as one command, ``activity`` as one with a 1 MiB payload,
    and ``wait`` ends the workflow task (what comes back arrives in the next one)."""
    sandbox = command_sandbox(limits=limits)
    driver = WorkflowDriver(sandbox, {})
    task = [1]

    async def next_task() -> Reply:
        await asyncio.sleep(0)
        task[0] += 1
        return ()

    def timer(_cmd: Any) -> Reply:
        driver.command("a timer")
        return ()

    def activity(_cmd: Any) -> Reply:
        driver.command("an activity", 1 << 20)
        return ()

    driver.handlers.update(timer=timer, activity=activity, wait=lambda _cmd: Blocking(next_task()))
    driver.task_id = lambda: task[0]
    return driver


async def test_20k_commands_in_one_workflow_task_stop_at_the_quota() -> None:
    driver = counting_driver()
    with pytest.raises(QuotaExceeded) as stopped:
        await driver.run(workflow_main(driver.sandbox, "for i = 1, 20000 do cmd.call{op = 'timer'} end"))
    assert (stopped.value.limit, stopped.value.where) == ("commands_per_task", "wf.lua:2")
    assert "(a timer would be command 2,001 of this workflow task; the limit is 2,000 commands per workflow task)" \
        in stopped.value.message


async def test_each_workflow_task_has_its_own_command_count() -> None:
    driver = counting_driver()
    (result,) = await driver.run(workflow_main(driver.sandbox, """
        for task = 1, 5 do
            for i = 1, 2000 do cmd.call{op = 'timer'} end
            cmd.call{op = 'wait'}
        end
        return 'sent 10,000 in 5 tasks'"""))
    assert result == "sent 10,000 in 5 tasks"


async def test_the_payload_bytes_of_one_workflow_task_are_bounded() -> None:
    driver = counting_driver()
    with pytest.raises(QuotaExceeded) as stopped:
        await driver.run(workflow_main(driver.sandbox, """
            for i = 1, 3 do cmd.call{op = 'activity'} end   -- 3 MiB: the limit
            cmd.call{op = 'wait'}
            for i = 1, 4 do cmd.call{op = 'activity'} end"""))
    assert (stopped.value.limit, stopped.value.where) == ("task_payload_bytes", "wf.lua:5")
    assert "(an activity would bring this workflow task's payloads to 4,194,304 bytes" in stopped.value.message


# ---------------------------------------------------------------------- payloads and error texts


async def test_a_payload_larger_than_temporal_takes_is_limit_exceeded_at_the_line() -> None:
    failure = await stopped_at(shim_run([]), """
        local blob = string.rep("x", 2 << 20)
        log.info("big", {blob = blob})""")
    assert (failure.limit, failure.where) == ("payload_bytes", "wf.lua:4")
    assert "(log fields is 2,097,163 bytes; the limit is 1,048,576 bytes per payload)" in failure.message


async def test_a_6mb_error_message_is_truncated() -> None:
    with pytest.raises(LuaRuntimeError) as raised:
        await drive('error(string.rep("x", 6e6))')
    error = raised.value
    assert error.message.startswith("wf.lua:2: xxxx") and error.value.startswith("wf.lua:2: xxxx")
    assert error.message.endswith(" ... [truncated: 6,000,010 bytes; the limit is 65,536 (limits.error_bytes)]")
    for text in (error.message, error.traceback, error.value):
        assert 60 << 10 < len(text.encode()) <= 64 << 10
        assert "[truncated: 6,000," in text


def test_truncated_cuts_at_a_character_boundary() -> None:
    assert truncated("short", 16) == "short"
    cut = truncated("é" * 1000, 120)
    assert cut.startswith("éé") and cut.endswith("[truncated: 2,000 bytes; the limit is 120 (limits.error_bytes)]")
    assert len(cut.encode()) <= 120 and "\ufffd" not in cut


def test_a_failure_sent_to_temporal_is_cut_to_the_quotas() -> None:
    failure = FlowFailure("CUSTOM", "m" * 100_000, retryable=False, details={"blob": "d" * (2 << 20)},
                          where="wf.lua:9")
    bounded = bounded_failure(failure, WORKFLOW_LIMITS)
    assert (bounded.kind, bounded.retryable, bounded.where) == ("CUSTOM", False, "wf.lua:9")
    assert len(bounded.message.encode()) <= 64 << 10 and "truncated: 100,000 bytes" in bounded.message
    assert bounded.details == {"dropped": "the error's details were 2,097,163 bytes; the limit is 1,048,576 "
                                          "(limits.payload_bytes)"}
    small = FlowFailure("CUSTOM", "fine", details={"a": 1})
    assert bounded_failure(small, WORKFLOW_LIMITS) is small


def test_payload_size_is_the_json_temporal_sends() -> None:
    assert payload_size({"a": [1, "é"]}) == len('{"a":[1,"\\u00e9"]}')


# ---------------------------------------------------------------------- configuration


def test_the_smallest_limit_wins() -> None:
    limits = narrowed(WORKFLOW_LIMITS, {"channels": 50, "listeners": 5_000, "memory": 1, "bogus": 3},
                      None, {"channels": 80, "coroutines": True, "error_bytes": 1024})
    assert (limits.channels, limits.listeners, limits.error_bytes) == (50, 1_000, 1024)
    assert (limits.memory, limits.coroutines) == (WORKFLOW_LIMITS.memory, WORKFLOW_LIMITS.coroutines), \
        "only quotas, only positive integers"
    assert narrowed(WORKFLOW_LIMITS) is WORKFLOW_LIMITS


def test_a_run_takes_the_limits_of_its_worker_entry_and_its_own() -> None:
    source = ProjectRevisionSource.from_paths([ENTRIES / "quotas"])
    assert validate_project([ENTRIES / "quotas"], cache_dir=None).ok
    hostile = entry_limits(WORKFLOW_LIMITS, source.workflow("quotas:hostile"), source.entry)
    tight = entry_limits(WORKFLOW_LIMITS, source.workflow("quotas:tight"), source.entry)
    assert (hostile.coroutines, hostile.channels) == (500, 10_000), "the worker entry's"
    assert (tight.coroutines, tight.channels) == (500, 20), "the workflow entry's, under the worker's"
    orphan = Revision(entry_id="x:wf", kind="workflow.lua", digest="0" * 64, data={
        "limits": {"listeners": 3}, "meta": {"temporal": {"workflow": {"worker": "x:gone"}}}}, source=None,
        source_name=None)
    assert entry_limits(WORKFLOW_LIMITS, orphan, source.entry).listeners == 3, "a worker not applied: its own"


def test_an_unknown_or_zero_limit_is_a_schema_error(tmp_path: Path) -> None:
    (tmp_path / "wf.lua").write_text("return {main = function() end}\n")
    (tmp_path / "app.yaml").write_text(
        'version: "1.0"\nnamespace: app\nentries:\n'
        "  - {name: client, kind: temporal.client}\n"
        "  - {name: worker, kind: temporal.worker, client: client, limits: {channels: 0}}\n"
        "  - name: wf\n    kind: workflow.lua\n    source: file://wf.lua\n    limits: {chanels: 10}\n"
        "    meta: {temporal: {workflow: {worker: worker}}}\n")
    report = validate_project([tmp_path], cache_dir=None)
    found = [(d.code, d.line, d.message, d.hint) for d in report.errors]
    assert found == [
        ("FC101", 5, "`channels`: 0 is out of range from 1 to 2147483647",
         "write a value from 1 to 2147483647 (Channels alive per run (channel.new, time.after, "
         "process.listen...): a channel counts until it is closed and drained.)"),
        ("FC105", 9, "unknown field `chanels` in `limits`", "did you mean `channels`?")]

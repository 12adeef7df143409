"""runner.sandbox.driver: the command/result loop between Lua threads and their handlers.

Real Lua in a real LuaSandbox, no Temporal: ``cmd.call{op = ...}`` yields a command the way
every shim does, and the handlers are plain Python functions. Blocking operations are asyncio
tasks on the test's event loop, gated by events the test opens.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from runner.sandbox.driver import Blocking, Handler, Reply, ShimError, ShimFailure, WorkflowDriver, read_only
from runner.sandbox.failures import FlowFailure, LimitExceeded, LuaRuntimeError
from runner.sandbox.runtime import SandboxLimits
from tests.support.sandboxes import command_sandbox, drive, workflow_main


class Gates:
    """Blocking operations the test completes by hand: ``{op = "wait", gate = name}``."""

    def __init__(self) -> None:
        self.events: dict[str, asyncio.Event] = {}
        self.started: list[str] = []

    def gate(self, name: str) -> asyncio.Event:
        return self.events.setdefault(name, asyncio.Event())

    def handler(self, cmd: Any) -> Blocking:
        name = str(cmd["gate"])  # read now: Lua may change the table while the work waits
        self.started.append(name)

        async def work() -> Reply:
            await self.gate(name).wait()
            return (name,)

        return Blocking(work())

    async def until_started(self, count: int) -> None:
        """Let the loop run until ``count`` operations have started."""
        for _ in range(1000):
            if len(self.started) >= count:
                return
            await asyncio.sleep(0)
        raise AssertionError(f"only {self.started} started")

    def open(self, *names: str) -> None:
        for name in names:
            self.gate(name).set()


# ---------------------------------------------------------------------------------- immediate commands

async def test_an_immediate_command_is_answered_on_the_spot_with_every_reply_value() -> None:
    seen: list[int] = []

    def add(cmd: Any) -> Reply:
        seen.append(cmd["a"] + cmd["b"])
        return (cmd["a"] + cmd["b"], None, "three")

    results = await drive("local s, n, t = cmd.call{op = 'add', a = 1, b = 2}\n"
                          "return s, n, t, select('#', cmd.call{op = 'add', a = 0, b = 0})",
                          {"add": add})
    assert results == (3, None, "three", 3)
    assert seen == [3, 0]


async def test_main_gets_its_arguments_and_returns_every_value() -> None:
    assert await drive("local a, b = ...\nreturn b, a, nil", {}, "x", 2) == (2, "x", None)


async def test_an_empty_reply_is_just_the_status() -> None:
    assert await drive("return cmd.raw{op = 'noop'}", {"noop": lambda _cmd: ()}) == (True,)


# ---------------------------------------------------------------------------------- errors become Lua errors

async def test_an_unknown_command_is_a_lua_error_the_caller_can_catch() -> None:
    results = await drive("return pcall(cmd.call, {op = 'teleport'})")
    assert results == (False, "unknown driver command 'teleport'")


async def test_a_command_that_is_not_a_table_is_refused() -> None:
    sandbox = command_sandbox()
    main = sandbox.entrypoint("local cmd = require('cmd')\nreturn {main = function()\n"
                              "return cmd.raw('just text')\nend}", "wf.lua", "main")
    assert await WorkflowDriver(sandbox, {}).run(main) == (False, "unknown driver command None")


async def test_a_shim_error_is_raised_in_lua_at_the_callers_line() -> None:
    def refuse(_cmd: Any) -> Reply:
        raise ShimError("time.sleep: duration must not be negative")

    with pytest.raises(LuaRuntimeError) as caught:
        await drive("local x = 1\ncmd.call{op = 'refuse'}", {"refuse": refuse})
    assert caught.value.message == "wf.lua:3: time.sleep: duration must not be negative"
    assert caught.value.where == "wf.lua:3"
    assert "wf.lua:3" in caught.value.traceback


async def test_a_shim_failure_reaches_lua_as_an_error_object() -> None:
    def fail(_cmd: Any) -> Reply:
        raise ShimFailure(FlowFailure("NOT_FOUND", "no such order", retryable=False, details={"id": 7}))

    results = await drive("local ok, err = pcall(cmd.call, {op = 'fail'})\n"
                          "return ok, err:kind(), err:message(), err:retryable(), err:details().id",
                          {"fail": fail})
    assert results == (False, "NOT_FOUND", "no such order", False, 7)


async def test_a_handler_that_answers_with_a_python_object_is_a_driver_bug() -> None:
    with pytest.raises(TypeError, match="driver bug: handler 'leak' answered with a Python object"):
        await drive("cmd.call{op = 'leak'}", {"leak": lambda _cmd: (object(),)})


async def test_an_uncaught_lua_error_ends_the_run_with_its_traceback() -> None:
    with pytest.raises(LuaRuntimeError) as caught:
        await drive("local t = nil\nreturn t.field")
    assert caught.value.message.startswith("wf.lua:3: attempt to index a nil value")
    assert caught.value.where == "wf.lua:3"


async def test_a_failing_blocking_operation_is_a_lua_error_at_the_caller() -> None:
    async def work() -> Reply:
        await asyncio.sleep(0)
        raise ShimError("the timer was refused")

    results = await drive("return pcall(cmd.call, {op = 'later'})", {"later": lambda _cmd: Blocking(work())})
    assert results == (False, "the timer was refused")


async def test_a_blocking_operation_can_fail_with_an_error_object() -> None:
    async def work() -> Reply:
        raise ShimFailure(FlowFailure("DECLINED", "card declined", retryable=False))

    results = await drive("local ok, err = pcall(cmd.call, {op = 'charge'})\nreturn ok, err:kind(), err:message()",
                          {"charge": lambda _cmd: Blocking(work())})
    assert results == (False, "DECLINED", "card declined")


# ---------------------------------------------------------------------------------- blocking commands

async def test_a_blocking_command_suspends_only_its_thread_until_the_work_completes() -> None:
    gates = Gates()
    sandbox = command_sandbox()
    driver = WorkflowDriver(sandbox, {"wait": gates.handler})
    run = asyncio.create_task(driver.run(workflow_main(sandbox, "return cmd.call{op = 'wait', gate = 'a'}, 'after'")))
    await gates.until_started(1)
    for _ in range(5):
        await asyncio.sleep(0)
    assert not run.done(), "the run waits for the operation"
    gates.open("a")
    assert await run == ("a", "after")


async def test_every_later_activation_resets_the_budget_and_runs_the_task_hooks() -> None:
    loop = "local n = 0\nfor i = 1, 120000 do n = n + i end\n"
    body = loop + "cmd.call{op = 'tick'}\n" + loop + "cmd.call{op = 'tick'}\n" + loop + "return 'done'"

    async def tick() -> Reply:
        await asyncio.sleep(0)
        return ()

    limits = SandboxLimits(instructions=400_000)
    sandbox = command_sandbox(limits=limits)
    driver = WorkflowDriver(sandbox, {"tick": lambda _cmd: Blocking(tick())})
    before: list[str] = []
    spent: list[float] = []
    driver.before_task.append(lambda: before.append("task"))
    driver.after_task.append(spent.append)
    assert await driver.run(workflow_main(sandbox, body)) == ("done",)
    assert before == ["task", "task"], "once per later workflow task, not for the first"
    assert len(spent) == 3 and all(seconds >= 0 for seconds in spent), "every task's Lua time, the last one's too"
    # the same work without a wait in between is one task, over the same budget
    with pytest.raises(LimitExceeded, match="instructions"):
        await drive(loop * 3 + "return 'done'", {}, sandbox=command_sandbox(limits=limits))


async def test_a_before_task_hook_that_raises_fails_the_run() -> None:
    async def tick() -> Reply:
        return ()

    sandbox = command_sandbox()
    driver = WorkflowDriver(sandbox, {"tick": lambda _cmd: Blocking(tick())})

    def refuse() -> None:
        raise RuntimeError("a newer revision took over")

    driver.before_task.append(refuse)
    with pytest.raises(RuntimeError, match="a newer revision took over"):
        await driver.run(workflow_main(sandbox, "cmd.call{op = 'tick'}\nreturn 1"))


# ---------------------------------------------------------------------------------- the ready queue

SPAWN_THREE = """
local order = {}
for _, name in ipairs({"a", "b", "c"}) do
    coroutine.spawn(function()
        order[#order + 1] = "start " .. name
        local got = cmd.call{op = "wait", gate = name}
        order[#order + 1] = "resumed " .. got
    end)
end
order[#order + 1] = "main waits"
cmd.call{op = "wait", gate = "main"}
return table.concat(order, ", ")
"""


async def test_spawned_threads_start_in_spawn_order_after_the_spawner_yields() -> None:
    gates = Gates()
    sandbox = command_sandbox()
    driver = WorkflowDriver(sandbox, {"wait": gates.handler})
    run = asyncio.create_task(driver.run(workflow_main(sandbox, SPAWN_THREE)))
    await gates.until_started(4)
    assert gates.started == ["main", "a", "b", "c"]
    gates.open("a", "b", "c")
    for _ in range(20):
        await asyncio.sleep(0)
    gates.open("main")
    assert await run == ("main waits, start a, start b, start c, resumed a, resumed b, resumed c",)


async def test_operations_completing_together_resume_their_threads_in_start_order() -> None:
    gates = Gates()
    sandbox = command_sandbox()
    driver = WorkflowDriver(sandbox, {"wait": gates.handler})
    run = asyncio.create_task(driver.run(workflow_main(sandbox, SPAWN_THREE)))
    await gates.until_started(4)
    gates.open("c", "b", "a")  # completion order c, b, a within one activation
    for _ in range(20):
        await asyncio.sleep(0)
    gates.open("main")
    result = (await run)[0]
    assert result.endswith("resumed a, resumed b, resumed c"), "sequence order, not completion order"


async def test_operations_completing_in_separate_activations_resume_as_they_complete() -> None:
    gates = Gates()
    sandbox = command_sandbox()
    driver = WorkflowDriver(sandbox, {"wait": gates.handler})
    run = asyncio.create_task(driver.run(workflow_main(sandbox, SPAWN_THREE)))
    await gates.until_started(4)
    for name in ("c", "a", "b"):
        gates.open(name)
        for _ in range(20):
            await asyncio.sleep(0)
    gates.open("main")
    assert (await run)[0].endswith("resumed c, resumed a, resumed b")


async def test_an_error_in_a_spawned_thread_ends_the_run() -> None:
    async def tick() -> Reply:
        return ()

    with pytest.raises(LuaRuntimeError, match=r"wf\.lua:2: boom"):
        await drive("coroutine.spawn(function() error('boom') end)\ncmd.call{op = 'tick'}\nreturn 'never'",
                    {"tick": lambda _cmd: Blocking(tick())})


async def test_main_returning_ends_the_run_before_threads_still_queued() -> None:
    assert await drive("coroutine.spawn(function() error('never runs') end)\nreturn 'main first'") == (
        "main first",)


# ---------------------------------------------------------------------------------- futures (start, then await)

def futures(driver: WorkflowDriver, gates: Gates) -> dict[str, Handler]:
    def start(cmd: Any) -> Reply:
        name = str(cmd["gate"])

        async def work() -> Reply:
            await gates.gate(name).wait()
            return (name.upper(),)

        return (driver.start_operation(work()),)

    return {"start": start}


async def test_a_started_operation_is_awaited_later_and_delivered_once() -> None:
    gates = Gates()
    sandbox = command_sandbox()
    driver = WorkflowDriver(sandbox, {})
    driver.handlers.update(futures(driver, gates))
    body = """
local first = cmd.call{op = "start", gate = "x"}
local second = cmd.call{op = "start", gate = "y"}
local y = cmd.call{op = "await", handle = second}
local x = cmd.call{op = "await", handle = first}
local ok, err = pcall(cmd.call, {op = "await", handle = first})
return first, second, x, y, ok, err
"""
    run = asyncio.create_task(driver.run(workflow_main(sandbox, body)))
    for _ in range(5):
        await asyncio.sleep(0)
    gates.open("x")  # x finishes first; nobody waits for it yet
    for _ in range(20):
        await asyncio.sleep(0)
    gates.open("y")
    assert await run == (1, 2, "X", "Y", False, "unknown or already consumed operation handle 1")


# ---------------------------------------------------------------------------------- queries, updates

async def test_call_now_answers_read_only_commands_and_refuses_the_rest() -> None:
    gates = Gates()
    sandbox = command_sandbox()
    driver = WorkflowDriver(sandbox, {"now": read_only(lambda _cmd: (42,)), "wait": read_only(gates.handler),
                                      "listen": lambda _cmd: (7,)})
    query = sandbox.compile("local cmd = require('cmd')\nreturn function(x)\n"
                            "local ok, err = pcall(cmd.call, {op = 'wait', gate = 'q'})\n"
                            "local ok2, err2 = pcall(cmd.call, {op = 'teleport'})\n"
                            "local ok3, err3 = pcall(cmd.call, {op = 'listen'})\n"
                            "return cmd.call{op = 'now'} + x, err, err2:kind(), err3:kind(), err3:message(), "
                            "err3:retryable()\nend", "query.lua")()
    now, waits, unknown, changes, message, retryable = driver.call_now(query, 1)
    assert now == 43
    assert waits == "wait cannot be used in a query or update validator (it waits)"
    assert (unknown, changes, retryable) == ("NONDETERMINISTIC_CALL", "NONDETERMINISTIC_CALL", False)
    assert message.startswith("listen cannot be used in a query handler or update validator: they may only read")
    assert gates.started == ["q"], "the handler ran, its work was closed unstarted"


async def test_an_update_thread_runs_beside_main_and_its_error_fails_only_the_update() -> None:
    gates = Gates()
    sandbox = command_sandbox()
    driver = WorkflowDriver(sandbox, {"wait": gates.handler})
    run = asyncio.create_task(driver.run(workflow_main(sandbox, "return cmd.call{op = 'wait', gate = 'main'}")))
    await gates.until_started(1)
    handlers = sandbox.compile("local cmd = require('cmd')\nreturn function(v)\n"
                               "return v * 2, cmd.call{op = 'wait', gate = 'u'}\nend,\n"
                               "function() error('refused') end", "update.lua")
    good, bad = handlers()
    doubled = driver.call(good, 21)
    failed = driver.call(bad)
    await gates.until_started(2)
    gates.open("u")
    assert await doubled == (42, "u")
    with pytest.raises(LuaRuntimeError, match=r"update\.lua:5: refused"):
        await failed
    gates.open("main")
    assert await run == ("main",)


# ---------------------------------------------------------------------------------- cancellation, abort

async def test_cancellation_fails_waiting_calls_with_canceled_and_runs_the_hooks() -> None:
    gates = Gates()
    sandbox = command_sandbox()
    driver = WorkflowDriver(sandbox, {"wait": gates.handler, "tick": lambda _cmd: ()})
    hooks: list[str] = []
    driver.on_cancel.append(lambda: hooks.append("canceled"))
    body = ("local ok, err = pcall(cmd.call, {op = 'wait', gate = 'forever'})\n"
            "cmd.call{op = 'tick'}  -- compensation still runs\n"
            "return ok, err:kind(), err:message(), err:retryable()")
    run = asyncio.create_task(driver.run(workflow_main(sandbox, body)))
    await gates.until_started(1)
    run.cancel()
    assert await run == (False, "CANCELED", "the workflow was canceled", False)
    assert driver.cancel_requested
    assert hooks == ["canceled"]


async def test_abort_stops_the_run_with_its_failure() -> None:
    gates = Gates()
    sandbox = command_sandbox()
    driver = WorkflowDriver(sandbox, {"wait": gates.handler})
    run = asyncio.create_task(driver.run(workflow_main(sandbox, "cmd.call{op = 'wait', gate = 'forever'}")))
    await gates.until_started(1)
    driver.abort(FlowFailure("LINKED_EXIT", "a linked child failed", retryable=False))
    with pytest.raises(FlowFailure, match="LINKED_EXIT: a linked child failed"):
        await run

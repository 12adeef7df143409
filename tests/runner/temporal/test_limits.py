"""docs/sandbox.md on the real dev server: a run that breaks a sandbox limit fails alone.

Each runaway workflow (an endless loop, a memory bomb, deep recursion, a giant string)
must fail *that* run with a non-retryable ApplicationError of type LIMIT_EXCEEDED whose
message names the limit and the Lua file:line, while another workflow on the same worker
completes meanwhile, and the worker keeps serving afterwards. A function.lua activity over
its limit fails that attempt non-retryably and the workflow sees ``err:kind()``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from runner.sandbox.runtime import SandboxLimits
from tests.support.paths import ENTRIES
from tests.support.worker import failure_of, lua_worker

LIMITS = SandboxLimits(memory=16 << 20, instructions=5_000_000)
PROJECT = ENTRIES / "limits_run"

#: mode -> (the limit it breaks, where); a full Lua stack needs more than 16 MiB, so plain
#: recursion hits the memory limit first, while recursion through pcall hits the C stack.
RUNAWAYS = {
    "loop": ("instructions", "runaway.lua:5", "5,000,000 instructions per task"),
    "memory": ("memory", "runaway.lua:8", "16 MiB"),
    "recursion": ("memory", "runaway.lua:10", "16 MiB"),
    "recursion_through_pcall": ("stack", "runaway.lua:14", ""),
    "giant_string": ("memory", "runaway.lua:18", "16 MiB"),
}


async def event_types(handle: WorkflowHandle[Any, Any]) -> list[int]:
    return [event.event_type for event in (await handle.fetch_history()).events]


async def test_each_limit_fails_only_its_own_run(dev_server: Any) -> None:
    async with lua_worker(await dev_server.client(), PROJECT, workflow_limits=LIMITS,
                          activity_limits=LIMITS) as project:
        steady = await project.start("limits:steady", {"wait": "1500ms"})
        runaways = {mode: await project.start("limits:runaway", {"mode": mode}) for mode in RUNAWAYS}
        failures = dict(zip(runaways, await asyncio.gather(*map(failure_of, runaways.values())), strict=True))
        assert await steady.result() == {"ok": True}, "a run on the same worker completes meanwhile"
        assert await project.run("limits:steady", {"wait": "10ms"}) == {"ok": True}, "the worker keeps serving"
        histories = {mode: await event_types(handle) for mode, handle in runaways.items()}
    for mode, (limit, where, detail) in RUNAWAYS.items():
        failure = failures[mode]
        assert failure.type == "LIMIT_EXCEEDED" and failure.non_retryable, mode
        expected = f"sandbox {limit} limit exceeded at {where}" + (f" ({detail})" if detail else "")
        assert failure.message.startswith(expected), (mode, failure.message)
        assert failure.details[:2] == ({"limit": limit}, where), mode
        events = histories[mode]
        assert events[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED, mode
        assert EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED not in events, f"{mode}: the run failed, not a task"
        assert EventType.EVENT_TYPE_TIMER_FIRED in events, f"{mode}: the limit was hit in a later workflow task"


async def test_an_activity_over_its_limit_fails_its_attempt_without_retries(dev_server: Any) -> None:
    async with lua_worker(await dev_server.client(), PROJECT, workflow_limits=LIMITS,
                          activity_limits=LIMITS) as project:
        steady = await project.start("limits:steady", {"wait": "500ms"})
        callers = {mode: await project.start("limits:calls_greedy_activity", {"mode": mode})
                   for mode in ("memory", "loop")}
        results = {mode: await handle.result() for mode, handle in callers.items()}
        histories = {mode: await event_types(handle) for mode, handle in callers.items()}
        assert await steady.result() == {"ok": True}
        assert await project.run("limits:steady", {"wait": "10ms"}) == {"ok": True}, "the worker keeps serving"
    assert results["memory"]["message"].startswith(
        "sandbox memory limit exceeded at greedy_activity.lua:4 (16 MiB)")
    assert results["loop"]["message"].startswith(
        "sandbox instructions limit exceeded at greedy_activity.lua:7 (5,000,000 instructions per task)")
    for mode, result in results.items():
        assert (result["kind"], result["retryable"]) == ("LIMIT_EXCEEDED", False), mode
        events = histories[mode]
        assert events.count(EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED) == 1, f"{mode}: 3 attempts allowed, 1 made"
        assert events.count(EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED) == 1, mode
        assert events[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, f"{mode}: the workflow handled it"

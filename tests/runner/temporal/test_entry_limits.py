"""docs/sandbox.md, Limits, on the real dev server: an entry's own ``limits: {memory, instructions_per_task}``.

The same Lua (tests/runner/entries/entry_limits/alloc.lua) allocates 4 MiB or loops a million rounds:
under an entry's ``memory: 1MiB`` / ``instructions_per_task: 100_000`` it fails with LIMIT_EXCEEDED
naming the limit, without them it completes. An entry asking for more than the worker allows
(``flowctl worker --max-memory``) fails its run with LIMIT_EXCEEDS_WORKER and says how to fix it; a
worker maximum below the defaults lowers every sandbox to it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from runner.sandbox.quotas import worker_maxima
from runner.sandbox.runtime import ACTIVITY_LIMITS, WORKFLOW_LIMITS
from tests.support.paths import ENTRIES
from tests.support.worker import failure_of, lua_worker

PROJECT = ENTRIES / "entry_limits"
FOUR_MIB = 4 * 1024 * 1024
LOOP_SUM = 500000500000


async def test_an_entry_s_limits_bound_its_runs_and_activity_calls(dev_server: Any) -> None:
    async with lua_worker(await dev_server.client(), PROJECT) as project:
        memory = await project.start("elim:small_heap", {"mode": "memory"})
        loop = await project.start("elim:small_heap", {"mode": "loop"})
        budget = await project.start("elim:short_budget", {"mode": "loop"})
        memory_failure, budget_failure = await asyncio.gather(failure_of(memory), failure_of(budget))
        assert await loop.result() == LOOP_SUM, "1 MiB is room enough for the loop"
        assert await project.run("elim:plain", {"mode": "memory"}) == FOUR_MIB, "the same code, no limits: runs"
        assert await project.run("elim:plain", {"mode": "loop"}) == LOOP_SUM
        activity = {mode: await project.run("elim:calls_small_activity", {"activity": "elim:small_activity",
                                                                          "mode": mode})
                    for mode in ("memory", "loop")}
        plain_activity = await project.run("elim:calls_small_activity", {"activity": "elim:plain_activity",
                                                                         "mode": "memory"})

    assert (memory_failure.type, memory_failure.non_retryable) == ("LIMIT_EXCEEDED", True)
    assert memory_failure.message.startswith("sandbox memory limit exceeded at alloc.lua:4 (1 MiB)"), \
        memory_failure.message
    assert (budget_failure.type, budget_failure.non_retryable) == ("LIMIT_EXCEEDED", True)
    assert budget_failure.message.startswith(
        "sandbox instructions limit exceeded at alloc.lua:9 (100,000 instructions per task)"), budget_failure.message
    assert activity["memory"]["kind"] == "LIMIT_EXCEEDED" and activity["memory"]["retryable"] is False
    assert "(512 KiB)" in activity["memory"]["message"], activity
    assert activity["loop"]["kind"] == "LIMIT_EXCEEDED" and "(100,000 instructions per task)" in \
        activity["loop"]["message"], activity
    assert plain_activity == {"result": FOUR_MIB}


async def test_an_entry_asking_above_the_worker_maximum_fails_with_a_clear_kind(dev_server: Any) -> None:
    async with lua_worker(await dev_server.client(), PROJECT) as project:
        failure = await failure_of(await project.start("elim:big_heap", {"mode": "memory"}))
    assert (failure.type, failure.non_retryable) == ("LIMIT_EXCEEDS_WORKER", True)
    assert failure.message == ("elim:big_heap asks for limits.memory 128 MiB, more than this worker allows (64 MiB): "
                               "lower the entry's limits.memory, or start the worker with --max-memory 128MiB")
    assert next(iter(failure.details)) == {"limit": "memory", "asked": 128 << 20, "maximum": 64 << 20}

    raised = [worker_maxima(limits, 256 << 20, None) for limits in (WORKFLOW_LIMITS, ACTIVITY_LIMITS)]
    async with lua_worker(await dev_server.client(), PROJECT, workflow_limits=raised[0],
                          activity_limits=raised[1]) as project:
        assert await project.run("elim:big_heap", {"mode": "memory"}) == FOUR_MIB, "--max-memory 256MiB allows it"


async def test_worker_maxima_below_the_defaults_clamp_every_sandbox(dev_server: Any) -> None:
    clamped = [worker_maxima(limits, 2 << 20, 1_000_000) for limits in (WORKFLOW_LIMITS, ACTIVITY_LIMITS)]
    assert [(lim.memory, lim.instructions) for lim in clamped] == [(2 << 20, 1_000_000)] * 2
    async with lua_worker(await dev_server.client(), PROJECT, workflow_limits=clamped[0],
                          activity_limits=clamped[1]) as project:
        memory = await project.start("elim:plain", {"mode": "memory"})
        loop = await project.start("elim:plain", {"mode": "loop"})
        memory_failure, loop_failure = await asyncio.gather(failure_of(memory), failure_of(loop))
        activity = await project.run("elim:calls_small_activity", {"activity": "elim:plain_activity",
                                                                   "mode": "loop"})
    assert memory_failure.message.startswith("sandbox memory limit exceeded at alloc.lua:4 (2 MiB)")
    assert loop_failure.message.startswith(
        "sandbox instructions limit exceeded at alloc.lua:9 (1,000,000 instructions per task)")
    assert activity["kind"] == "LIMIT_EXCEEDED" and "(1,000,000 instructions per task)" in activity["message"]

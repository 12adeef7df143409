"""SPEC §5.2 on a real server: a run that exceeds a sandbox limit fails alone, non-retryably, with
LIMIT_EXCEEDED naming the limit and the Lua file:line, while the worker keeps serving other runs."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import ENTRIES, lua_worker
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

LIMITS = {"memory_limit": 16 << 20, "instruction_limit": 5_000_000}


@pytest.mark.parametrize(("mode", "limit", "line"), [
    ("loop", "instructions", "runaway.lua:5"),
    ("memory", "memory", "runaway.lua:"),
    ("recursion", "stack", "runaway.lua:"),
    ("string", "memory", "runaway.lua:13"),
])
async def test_a_limit_fails_that_run_only(dev_server: Any, mode: str, limit: str, line: str) -> None:
    stack = {"memory_limit": 256 << 20} if limit == "stack" else {}
    async with lua_worker(await dev_server.client(), ENTRIES / "limits",
                          workflow_limits={**LIMITS, **stack}, activity_limits=LIMITS) as project:
        steady = await project.start("app:steady", {"wait": "1s"})
        runaway = await project.start("app:runaway", {"mode": mode})
        with pytest.raises(WorkflowFailureError) as failed:
            await runaway.result()
        assert await steady.result() == {"ok": True}, "another run on the same worker completes meanwhile"
        assert await project.run("app:steady", {"wait": "10ms"}) == {"ok": True}, "the worker keeps serving"
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "LIMIT_EXCEEDED" and cause.non_retryable
    assert f"sandbox {limit} limit exceeded at {line}" in cause.message


async def test_an_activity_over_its_limit_fails_non_retryably(dev_server: Any) -> None:
    async with lua_worker(await dev_server.client(), ENTRIES / "limits",
                          workflow_limits=LIMITS, activity_limits=LIMITS) as project:
        handle = await project.start("app:runaway", {"mode": "activity"})
        result = await handle.result()
        history = await handle.fetch_history()
    assert result["kind"] == "LIMIT_EXCEEDED"
    assert result["retryable"] is False
    assert "sandbox memory limit exceeded at hungry_activity.lua:1" in result["message"]
    failed = [e for e in history.events if e.HasField("activity_task_failed_event_attributes")]
    started = [e for e in history.events if e.HasField("activity_task_started_event_attributes")]
    assert len(failed) == 1 and started[0].activity_task_started_event_attributes.attempt == 1, \
        "the entry allows 3 attempts, but a limit is never retried"

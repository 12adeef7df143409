"""docs/sandbox.md, Quotas, on the real dev server: the red team's unmetered resources end safely (issue 13).

Each hostile run (tests/runner/entries/quotas/hostile.lua) goes past a quota while a bystander on the
same worker keeps running and completes: 20,000 timers in one workflow task (the dev server's store
failed at 5,000 and the task was retried for ever), 1,500 self-sends of 1 MiB (a worker went from
60 MB to 2.9 GB), spawned coroutines past the worker entry's ``limits:``, channels past the workflow
entry's, a 3 MB result, and 6 MB error texts (more than gRPC carries: the failure was never
recorded). The quotas fail their run with a non-retryable LIMIT_EXCEEDED naming the quota; error
texts arrive truncated.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from tests.support.paths import ENTRIES
from tests.support.worker import failure_of, lua_worker

PROJECT = ENTRIES / "quotas"

#: mode -> (quota, where, what the message says past "(")
STOPPED = {
    "timers": ("commands_per_task", "hostile.lua:6",
               "time.after would be command 2,001 of this workflow task; the limit is 2,000 commands per workflow "
               "task"),
    "self_sends": ("payload_bytes", "hostile.lua:11",
                   "process.send('blob') payload is 1,048,578 bytes; the limit is 1,048,576 bytes per payload"),
    "small_self_sends": ("queued_bytes", "hostile.lua:16",
                         "16,777,344 bytes of messages wait; the limit is 16,777,216 bytes of queued messages per run"),
    "spawns": ("coroutines", "hostile.lua:21", "500 coroutines alive at once"),
    "big_result": ("payload_bytes", "the workflow's result",
                   "the result is 3,000,002 bytes; the limit is 1,048,576 bytes per payload"),
}


async def first_task_failure(handle: WorkflowHandle[Any, Any]) -> str:
    """The message of the run's first failed workflow task, once there is one."""
    for _ in range(300):
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                return str(event.workflow_task_failed_event_attributes.failure.message)
        await asyncio.sleep(0.1)
    raise AssertionError(f"{handle.id}: no workflow task failure was recorded")


async def test_runs_past_a_quota_fail_alone_and_error_texts_arrive_truncated(dev_server: Any) -> None:
    async with lua_worker(await dev_server.client(), PROJECT) as project:
        bystander = await project.start("quotas:bystander", {"rounds": 20, "wait": "100ms"})
        hostile = {mode: await project.start("quotas:hostile", {"mode": mode}) for mode in STOPPED}
        tight = await project.start("quotas:tight")
        error_object = await project.start("quotas:hostile", {"mode": "error_object"})
        error_text = await project.start("quotas:hostile", {"mode": "error_text"})
        activity_error = await project.start("quotas:hostile", {"mode": "activity_error"})

        failures = dict(zip(hostile, await asyncio.gather(*map(failure_of, hostile.values())), strict=True))
        tight_failure = await failure_of(tight)
        object_failure = await failure_of(error_object)
        task_failure = await first_task_failure(error_text)
        seen_by_workflow = await activity_error.result()
        assert await bystander.result() == {"ok": True}, "a run on the same worker completes meanwhile"
        assert await project.run("quotas:bystander", {"rounds": 1, "wait": "10ms"}) == {"ok": True}, \
            "the worker keeps serving"
        await error_text.terminate("the test is done with it")  # its task fails on every retry, as any Lua error's

    for mode, (quota, where, detail) in STOPPED.items():
        failure = failures[mode]
        assert (failure.type, failure.non_retryable) == ("LIMIT_EXCEEDED", True), mode
        assert failure.message.startswith(f"sandbox {quota} limit exceeded at {where} ({detail})"), \
            (mode, failure.message)
        assert list(failure.details) == [{"limit": quota}, where], mode

    assert tight_failure.type == "LIMIT_EXCEEDED" and tight_failure.message.startswith(
        "sandbox channels limit exceeded at tight.lua:4 (20 channels alive per run)"), "the entry's own limits:"

    # a 6 MB error object fails its run with the message cut to 64 KiB (the default error_bytes)
    assert (object_failure.type, object_failure.non_retryable) == ("CUSTOM", True)
    assert len(object_failure.message.encode()) <= 64 << 10
    assert object_failure.message.startswith("yyyy") and object_failure.message.endswith(
        "... [truncated: 6,000,000 bytes; the limit is 65,536 (limits.error_bytes)]")

    # a 6 MB error() fails the workflow task, like any Lua error: the failure now reaches the history
    assert len(task_failure.encode()) <= 64 << 10
    assert task_failure.startswith("hostile.lua:25: xxxx") and "[truncated: 6,000," in task_failure

    # a 6 MB error() in an activity: the workflow sees it cut to the activity entry's 4 KiB
    assert seen_by_workflow["kind"] == "INTERNAL" and seen_by_workflow["bytes"] <= 4096
    assert seen_by_workflow["tail"].endswith("[truncated: 6,000,013 bytes; the limit is 4,096 (limits.error_bytes)]")

"""Reference/003's process model, the control side, on a real server: process.with_context reaching a
child and its activity, workflow.on_query / on_update (validators that reject), cancellation seen as
CANCELED by the blocking call with compensations still running, a parent cancelling its child. Every
history then replays 20 times in fresh interpreters with 0 divergences."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowHistory,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError, CancelledError

from tests.support.paths import ENTRIES
from tests.support.replay import HistoryRecorder
from tests.support.worker import LuaProject, lua_worker

#: the runs (and their children) these tests start, replayed by the last test
RECORDER = HistoryRecorder()
record = RECORDER.record


@pytest.fixture(scope="module")
async def project(dev_server: Any) -> AsyncIterator[LuaProject]:
    async with lua_worker(await dev_server.client(), ENTRIES / "process_control") as served:
        yield served


async def reached(handle: WorkflowHandle[Any, Any], wanted: Callable[[HistoryEvent], bool]) -> None:
    """Wait until the run's history has an event ``wanted`` (the workflow reached that point)."""
    for _ in range(200):
        if [event async for event in handle.fetch_history_events() if wanted(event)]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the workflow never reached the expected point")


def activities_in(history: WorkflowHistory) -> list[str]:
    return [e.activity_task_scheduled_event_attributes.activity_type.name for e in history.events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]


def index_of(history: WorkflowHistory, event_type: int) -> int:
    return next(i for i, e in enumerate(history.events) if e.event_type == event_type)


async def test_with_context_reaches_the_child_and_its_activity(project: LuaProject) -> None:
    handle = await project.start("app:context_parent", {}, context={"request_id": "req-abc"})
    result = await handle.result()
    await record(handle)
    merged = {"request_id": "req-abc", "user_id": "user-1", "tenant": "tenant-1"}
    assert result["spawned"] == {"user_id": "user-1", "tenant": "tenant-1", "all": merged,
                                 "activity": {"tenant": "tenant-1", "all": merged}}
    assert result["spawned_from"] is True
    assert result["exec"] == {"tenant": "tenant-2", "all": {"request_id": "req-abc", "tenant": "tenant-2"},
                              "activity": {"tenant": "tenant-2", "all": {"request_id": "req-abc",
                                                                         "tenant": "tenant-2"}}}
    assert result["own"] == {"request_id": "req-abc"}, "with_context does not change the spawner's own context"


async def test_queries_and_updates_with_validators(project: LuaProject) -> None:
    handle = await project.start("app:account", {"balance": 10})
    # an update sent right after the start is served (not rejected because Lua has not run yet)
    assert await handle.execute_update("deposit", 5) == 15
    assert await handle.query("balance") == {"balance": 15, "operations": 1}
    assert await handle.query("operation", 1) == {"kind": "deposit", "amount": 5}

    with pytest.raises(WorkflowUpdateFailedError) as rejected:
        await handle.execute_update("deposit", -3)
    assert isinstance(rejected.value.cause, ApplicationError)
    assert rejected.value.cause.type == "INVALID"
    assert "a deposit must be a positive integer" in rejected.value.cause.message

    # a validator that raises rejects too: a plain Lua error is INTERNAL, an error object keeps its kind
    with pytest.raises(WorkflowUpdateFailedError) as raised:
        await handle.execute_update("withdraw", 2.5)
    assert isinstance(raised.value.cause, ApplicationError) and raised.value.cause.type == "INTERNAL"
    assert "account.lua:37: withdraw takes an integer amount" in raised.value.cause.message
    with pytest.raises(WorkflowUpdateFailedError) as typed:
        await handle.execute_update("withdraw", -1)
    assert isinstance(typed.value.cause, ApplicationError) and typed.value.cause.type == "INVALID"
    assert "withdraw a positive amount" in typed.value.cause.message

    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await handle.execute_update("withdraw", 100)
    assert isinstance(failed.value.cause, ApplicationError)
    assert failed.value.cause.type == "INSUFFICIENT_FUNDS" and "balance is 15" in failed.value.cause.message

    assert await handle.execute_update("withdraw", 4) == 11
    with pytest.raises(WorkflowUpdateFailedError) as unknown:
        await handle.execute_update("transfer", 1)
    assert isinstance(unknown.value.cause, ApplicationError) and unknown.value.cause.type == "NOT_FOUND"
    with pytest.raises(WorkflowQueryFailedError, match="no query handler 'owner'"):
        await handle.query("owner")

    assert await handle.execute_update("close") == "closing"
    assert await handle.result() == {"balance": 11, "operations": [{"kind": "deposit", "amount": 5},
                                                                  {"kind": "withdraw", "amount": 4}]}
    history = await record(handle)
    accepted = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED]
    assert len(accepted) == 4, "rejected updates leave no trace in the history; accepted ones (even failed) do"


async def test_cancel_during_a_timer_raises_canceled_and_compensations_run(project: LuaProject) -> None:
    handle = await project.start("app:order_saga", {"id": "o-1"})
    await reached(handle, lambda e: e.event_type == EventType.EVENT_TYPE_TIMER_STARTED)
    await handle.cancel()
    result = await handle.result()
    assert result == {"status": "compensated", "steps": ["reserve:o-1", "charge:o-1"], "raised": True,
                      "kind": "CANCELED", "retryable": False, "undone": ["refund:o-1", "release:o-1"]}
    history = await record(handle)
    assert activities_in(history) == ["app:saga_step"] * 4


async def test_cancel_during_an_activity_returns_canceled_and_the_run_ends_canceled(project: LuaProject) -> None:
    handle = await project.start("app:order_saga", {"id": "o-2", "wait_with": "activity", "end_canceled": True})
    await reached(handle, lambda e: e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
                  and e.activity_task_scheduled_event_attributes.activity_type.name == "app:slow_ship")
    await handle.cancel()
    with pytest.raises(WorkflowFailureError) as ended:
        await handle.result()
    assert isinstance(ended.value.cause, CancelledError)
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    history = await record(handle)
    # the two compensations were scheduled after the cancel request, and completed
    requested = index_of(history, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED)
    after = [e.activity_task_scheduled_event_attributes.input for e in history.events[requested:]
             if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
    assert len(after) == 2
    assert activities_in(history) == ["app:saga_step", "app:saga_step", "app:slow_ship", "app:saga_step",
                                      "app:saga_step"]
    completed = [e for e in history.events[requested:] if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED]
    assert len(completed) == 2


@pytest.mark.parametrize("on", ["timer", "inbox"])
async def test_an_unhandled_cancellation_ends_the_run_canceled(project: LuaProject, on: str) -> None:
    handle = await project.start("app:waiter", {"on": on})
    await reached(handle, lambda e: e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
    await handle.cancel()
    with pytest.raises(WorkflowFailureError) as ended:
        await handle.result()
    assert isinstance(ended.value.cause, CancelledError), "Canceled, not Failed with a CANCELED error"
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    await record(handle)


async def test_a_parent_cancels_its_child(project: LuaProject) -> None:
    handle = await project.start("app:saga_supervisor", {"id": "o-3"})
    assert await handle.result() == {"cancel_ok": True, "kind": "EXIT", "error_kind": "CANCELED", "same": True}
    await record(handle)


async def test_a_child_that_outlives_its_cancel_deadline_is_terminated(project: LuaProject) -> None:
    handle = await project.start("app:saga_supervisor", {"deadline": "500ms"})
    assert await handle.result() == {"cancel_ok": True, "kind": "EXIT", "error_kind": "TERMINATED"}
    await record(handle)


async def test_every_history_replays_twenty_times(project: LuaProject) -> None:
    await RECORDER.assert_all_replay(project.source, project.client, at_least=8, children_at_least=4)

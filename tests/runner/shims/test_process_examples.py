"""Reference/003's process model on a real server: messages, replies, children, monitors, links, start
messages; every history then replays 20 times in fresh interpreters with 0 divergences."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError

from runner.dev.binaries import find_temporal_cli
from tests.support.paths import ENTRIES
from tests.support.replay import HistoryRecorder
from tests.support.worker import LuaProject, lua_worker

#: the runs (and their children) these tests start, replayed by the last test
RECORDER = HistoryRecorder()
record = RECORDER.record


@pytest.fixture(scope="module")
async def project(dev_server: Any) -> AsyncIterator[LuaProject]:
    async with lua_worker(await dev_server.client(), ENTRIES / "process") as served:
        yield served


async def finish(handle: WorkflowHandle[Any, Any]) -> Any:
    result = await handle.result()
    await record(handle)
    return result


async def test_inbox_approval_keeps_early_messages_in_order(project: LuaProject) -> None:
    handle = await project.start("app:approval", {"id": "o-1"})
    await handle.signal("noise", {"x": 1})
    await handle.signal("approve", None)
    assert await finish(handle) == {"status": "approved", "order": "o-1"}
    cancelled = await project.start("app:approval", {"id": "o-2"})
    await cancelled.signal("cancel", {"reason": "customer asked"})
    assert await finish(cancelled) == {"status": "cancelled", "reason": "customer asked"}


async def test_topic_subscription_with_select(project: LuaProject) -> None:
    handle = await project.start("app:jobs", {})
    for job in range(3):
        await handle.signal("add_job", {"id": job})
    await handle.signal("exit", None)
    result = await finish(handle)
    assert result["total_jobs"] == 3 and result["ended"] == "exit"
    assert [r["job_id"] for r in result["results"]] == [0, 1, 2]
    assert result["results"][1]["result"] == {"job_id": 1, "data": {"id": 1}}


async def test_topic_subscription_with_select_and_an_idle_timeout(project: LuaProject) -> None:
    handle = await project.start("app:jobs", {"idle": "400ms"})
    await handle.signal("add_job", {"id": "a"})
    await handle.signal("add_job", {"id": "b"})
    result = await finish(handle)
    assert result["ended"] == "idle", "no exit message: the time.after case ended the loop"
    assert [r["job_id"] for r in result["results"]] == ["a", "b"]


async def test_request_reply_with_time_after_timeout(project: LuaProject) -> None:
    assert await finish(await project.start("app:status_timeout", {"wait": "300ms"})) == {"status": "timed_out"}
    handle = await project.start("app:status_timeout", {"wait": "30s"})
    await handle.signal("get_status", {"q": 1})
    assert await finish(handle) == {"status": "answered", "from": "client", "data": {"q": 1}}


async def test_multi_signal_counter_replies_to_the_sender(project: LuaProject) -> None:
    result = await finish(await project.start("app:counter_client", {"initial": 0}))
    log = result["log"]
    assert [(e["topic"], e["reply"]) for e in log] == [
        ("increment", "ack"), ("increment", "nak"), ("decrement", "ack"), ("decrement", "nak"), ("finish", "ack")]
    assert log[0]["value"] == {"value": 5} and log[2]["value"] == {"value": 3}
    assert log[1]["reason"] == "amount must be a number"
    assert log[3]["reason"] == "would result in negative value"
    assert all(e["from_counter"] for e in log), "replies come from the counter's pid"
    assert result["final"] == {"final_counter": 3}


async def test_cross_workflow_ping_pong(project: LuaProject) -> None:
    ponger_id = f"ponger-{uuid.uuid4().hex[:8]}"
    ponger = await project.start("app:ponger", workflow_id=ponger_id)
    pinger = await project.start("app:pinger", {"target": ponger_id})
    result = await finish(pinger)
    assert result == {"ok": True, "received": {"echo": "hello", "by": ponger_id}}
    assert await finish(ponger) == {"answered": pinger.id}


async def test_concurrent_workers_with_channels(project: LuaProject) -> None:
    result = await finish(await project.start("app:concurrent", {"workers": 3, "jobs": 6}))
    assert result["total"] == 42
    assert sorted(r["job"] for r in result["processed"]) == [1, 2, 3, 4, 5, 6]
    assert {r["worker"] for r in result["processed"]} == {1, 2, 3}, "the jobs were spread over the coroutines"


async def test_children_sync_async_and_error_propagation(project: LuaProject) -> None:
    assert await finish(await project.start("app:parent", {})) == {
        "sync": "sync", "async_kind": "EXIT", "async_value": "hello from parent", "async_from_is_child": True,
        "error_kind": "NOT_FOUND", "error_retryable": False, "error_message": "nothing here",
        "exec_err": "NOT_FOUND"}


@pytest.mark.slow
async def test_starting_workflows_names_ids_and_conflict_policies(project: LuaProject) -> None:
    prefix = f"start-{uuid.uuid4().hex[:8]}"
    result = await finish(await project.start("app:starter", {"prefix": prefix}))
    assert result["monitored"] == {"kind": "EXIT", "echo": "m1", "same": True}
    assert result["named"] == {"same": True, "id": f"{prefix}-named",
                               "exit": {"kind": "EXIT", "value": {"iterations": 5}, "same": True}}
    assert result["explicit"] == {"id": f"{prefix}-order", "fail": "ALREADY_STARTED", "already": "ALREADY_STARTED",
                                  "reused": True}
    assert result["replaced"] == {"same_id": True, "new_run": True, "exits": [
        {"kind": "EXIT", "error": "TERMINATED"}, {"kind": "EXIT", "echo": "replacement"}]}


@pytest.mark.slow
async def test_monitor_after_start_delivers_exit(project: LuaProject) -> None:
    result = await finish(await project.start("app:supervisor", {"mode": "monitor"}))
    assert result == {"monitored": True, "kind": "EXIT", "value": {"iterations": 5}, "same": True}


async def test_link_after_start_gets_link_down_on_terminate(project: LuaProject) -> None:
    result = await finish(await project.start("app:supervisor", {"mode": "link"}))
    assert result == {"trap": True, "linked": True, "kind": "LINK_DOWN", "error_kind": "TERMINATED", "same": True,
                      "more": False}


async def test_a_linked_child_terminated_without_trap_links_fails_the_parent(project: LuaProject) -> None:
    handle = await project.start("app:supervisor", {"mode": "link_untrapped"})
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    await record(handle)
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "TERMINATED"
    assert "linked workflow long-workflow-" in cause.message


async def test_an_unmonitored_child_exits_silently(project: LuaProject) -> None:
    handle = await project.start("app:supervisor", {"mode": "unmonitor"})
    assert await finish(handle) == {"unmonitored": True, "quiet": True}
    kinds = [e.event_type for e in RECORDER.histories[-1].events]
    assert kinds.index(EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED) < kinds.index(
        EventType.EVENT_TYPE_TIMER_FIRED), "the child had exited while the parent still listened"


async def test_send_to_a_missing_workflow_returns_an_error(project: LuaProject) -> None:
    result = await finish(await project.start("app:pinger", {"target": f"nobody-{uuid.uuid4().hex[:8]}"}))
    assert result["ok"] is False and "NOT_FOUND" in result["error"]


async def test_only_children_can_be_monitored_or_linked(project: LuaProject) -> None:
    assert await finish(await project.start("app:supervisor", {"mode": "stranger"})) == {
        "monitor": "NOT_FOUND", "link": "NOT_FOUND"}


async def test_start_messages_reach_a_reused_workflow(project: LuaProject) -> None:
    result = await finish(await project.start("app:spawner", {"name": f"counter-{uuid.uuid4().hex[:8]}"}))
    assert result["same"] is True and "err2" not in result, "no error: a nil field is absent"
    # the start message (3) before the message sent right after the start (10), then the reusing spawn's (2);
    # the reusing spawn's input {initial = 999} is ignored
    assert result["values"] == [3, 13, 15]
    assert result["final"] == {"final_counter": 15}


async def test_signals_from_the_plain_temporal_cli(project: LuaProject, dev_server: Any) -> None:
    handle = await project.start("app:approval", {"id": "o-cli"})
    done = await asyncio.to_thread(subprocess.run, [
        str(find_temporal_cli()), "workflow", "signal", "--address", dev_server.address, "--workflow-id",
        handle.id, "--name", "approve", "--input", '{"by": "ops"}'], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert await finish(handle) == {"status": "approved", "order": "o-cli"}
    # msg:from() is nil for a plain client
    asked = await project.start("app:status_timeout", {"wait": "30s"})
    done = await asyncio.to_thread(subprocess.run, [
        str(find_temporal_cli()), "workflow", "signal", "--address", dev_server.address, "--workflow-id",
        asked.id, "--name", "get_status", "--input", '{"q": "cli"}'], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert await finish(asked) == {"status": "answered", "from": "client", "data": {"q": "cli"}}


async def test_every_history_replays_twenty_times(project: LuaProject) -> None:
    await RECORDER.assert_all_replay(project.source, project.client, at_least=16, children_at_least=14)


async def test_terminate_existing_replaces_only_a_child_of_the_caller(project: LuaProject) -> None:
    victim_id = f"victim-{uuid.uuid4().hex[:8]}"
    victim = await project.start("app:long_workflow", {"iterations": 50}, workflow_id=victim_id)
    try:
        result = await finish(await project.start("app:usurper", {"id": victim_id}))
        assert "pid" not in result and result["kind"] == "NOT_FOUND"
        assert result["message"].startswith(f"id_conflict_policy terminate_existing: {victim_id} is running and is "
                                            "not a child of this workflow"), result
        assert (await victim.describe()).status is not None and (await victim.describe()).status.name == "RUNNING"
    finally:
        await victim.terminate("test cleanup")

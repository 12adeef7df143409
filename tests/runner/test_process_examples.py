"""Reference/003's process model on a real server: messages, replies, children, monitors, links, start
messages; every history then replays 20 times in fresh interpreters with 0 divergences."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from conftest import ENTRIES, LuaProject, lua_worker
from temporalio.client import WorkflowHandle, WorkflowHistory
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner

from runner.binaries import find_temporal_cli
from runner.workflow import make_workflow_class

HISTORIES: list[WorkflowHistory] = []


@pytest.fixture(scope="module")
async def project(dev_server: Any) -> AsyncIterator[LuaProject]:
    async with lua_worker(await dev_server.client(), ENTRIES / "process") as served:
        yield served


async def finish(handle: WorkflowHandle[Any, Any]) -> Any:
    result = await handle.result()
    HISTORIES.append(await handle.fetch_history())
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
    assert result["total_jobs"] == 3
    assert [r["job_id"] for r in result["results"]] == [0, 1, 2]
    assert result["results"][1]["result"] == {"job_id": 1, "data": {"id": 1}}


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


async def test_monitor_after_start_delivers_exit(project: LuaProject) -> None:
    result = await finish(await project.start("app:supervisor", {"mode": "monitor"}))
    assert result == {"monitored": True, "kind": "EXIT", "value": {"iterations": 5}, "same": True}


async def test_link_after_start_gets_link_down_on_terminate(project: LuaProject) -> None:
    result = await finish(await project.start("app:supervisor", {"mode": "link"}))
    assert result == {"trap": True, "linked": True, "kind": "LINK_DOWN", "error_kind": "TERMINATED", "same": True}


async def test_start_messages_reach_a_reused_workflow(project: LuaProject) -> None:
    result = await finish(await project.start("app:spawner", {"name": f"counter-{uuid.uuid4().hex[:8]}"}))
    assert result["same"] is True and "err2" not in result, "no error: a nil field is absent"
    assert result["values"] == [3, 5], "the first start's message, then the reusing spawn's"


async def test_signals_from_the_plain_temporal_cli(project: LuaProject, dev_server: Any) -> None:
    handle = await project.start("app:approval", {"id": "o-cli"})
    done = await asyncio.to_thread(subprocess.run, [
        str(find_temporal_cli()), "workflow", "signal", "--address", dev_server.address, "--workflow-id",
        handle.id, "--name", "approve", "--input", '{"by": "ops"}'], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert await finish(handle) == {"status": "approved", "order": "o-cli"}


async def test_every_history_replays_twenty_times(project: LuaProject) -> None:
    assert len(HISTORIES) >= 12, "the tests above recorded their histories"

    async def each() -> AsyncIterator[WorkflowHistory]:
        for history in HISTORIES:
            yield history

    replayer = Replayer(workflows=[make_workflow_class(project.source)], workflow_runner=UnsandboxedWorkflowRunner())
    for _ in range(20):
        results = await replayer.replay_workflows(each(), raise_on_replay_failure=False)
        assert {k: str(v) for k, v in results.replay_failures.items()} == {}

"""Stuck runs are visible: describe, run --wait and list on the real dev server, with a real (in-process) worker.

A run is stuck when it is running and its workflow task keeps failing: a Lua ``error("...")``
or a nondeterministic change. Temporal retries the first failure at once, so each of these is
seen within 10 s of the start (the deadlines below are the issue's "Done when", not benchmarks).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from runner.client.executions import StuckWatch, TaskFailure, describe_execution, run_entry
from runner.client.listing import RunFilter, list_runs
from runner.render import described
from tests.support.histories import with_source
from tests.support.worker import lua_worker

ENTRIES = Path(__file__).resolve().parent / "entries_stuck"
#: a stuck run is reported within this many seconds of its start (issue 11, "Done when")
REPORTED_WITHIN = 10.0

T = TypeVar("T")


async def within(seconds: float, look: Callable[[], Awaitable[T | None]], what: str) -> T:
    """What ``look`` finds, once it finds something, at most ``seconds`` from now."""
    deadline = time.monotonic() + seconds
    while True:
        found = await look()
        if found is not None:
            return found
        assert time.monotonic() < deadline, f"not seen within {seconds:g} s: {what}"
        await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def terminated_at_end(*handles: WorkflowHandle[Any, Any]) -> AsyncIterator[None]:
    """Stuck runs retry forever: terminate them when the test is done."""
    try:
        yield
    finally:
        for handle in handles:
            with contextlib.suppress(Exception):
                await handle.terminate("test done")


async def stuck_failure(client: Client, handle: WorkflowHandle[Any, Any]) -> TaskFailure | None:
    return (await describe_execution(client, handle.id)).task_failure


async def test_a_lua_bug_is_stuck_in_describe_and_list_with_its_message_and_line(dev_server: Any) -> None:
    client = await dev_server.client()
    async with lua_worker(client, ENTRIES) as project:
        started_at = time.monotonic()
        handle = await project.start("stuck:buggy")
        async with terminated_at_end(handle):
            failure = await within(REPORTED_WITHIN - (time.monotonic() - started_at),
                                   lambda: stuck_failure(client, handle), "describe shows the run stuck")
            stuck_runs = await within(
                REPORTED_WITHIN - (time.monotonic() - started_at),
                lambda: _nonempty(list_runs(client, RunFilter(workflow_type="stuck:buggy", status="stuck"))),
                "list --status stuck lists it")
            found = await describe_execution(client, handle.id)

    assert failure.failures >= 1 and failure.attempt == failure.failures + 1
    assert failure.message == "bug: no order nil" and failure.where == "buggy.lua:4"
    assert not failure.nondeterminism and failure.cause == "workflow_worker_unhandled_failure"
    assert "buggy.lua:4: in function" in failure.traceback, "the Lua traceback comes along"
    assert found.status == "running" and found.stuck and found.to_dict()["task_failure"]["where"] == "buggy.lua:4"
    text = "".join(out.text for out in described(found, as_json=False))
    assert f"{handle.id}  running (stuck: workflow task failed" in text
    assert "  stuck:      bug: no order nil\n              at buggy.lua:4, workflow task attempt" in text
    assert handle.id in [run.workflow_id for run in stuck_runs.runs]
    [listed] = [run for run in stuck_runs.runs if run.workflow_id == handle.id]
    assert listed.status == "stuck" and listed.task_failure is not None and listed.task_failure.where == "buggy.lua:4"
    assert listed.revision == project.source.workflow("stuck:buggy").digest


async def test_a_healthy_running_run_is_running_and_not_listed_as_stuck(dev_server: Any) -> None:
    client = await dev_server.client()
    async with lua_worker(client, ENTRIES) as project:
        handle = await project.start("stuck:waiter")
        async with terminated_at_end(handle):
            await handle.query("__stack_trace")  # its first workflow task completed
            found = await describe_execution(client, handle.id)
            moved = await describe_execution(client, handle.id, upgrades={(handle.id, found.run_id): "f" * 64})
            stuck = await list_runs(client, RunFilter(workflow_type="stuck:waiter", status="stuck"))
            running = await list_runs(client, RunFilter(workflow_type="stuck:waiter", status="running"))
            await handle.signal("done", None)
            assert await handle.result() == "done"

    assert found.status == "running" and not found.stuck and found.task_failure is None
    assert "(stuck" not in "".join(out.text for out in described(found, as_json=False))
    assert found.revision == project.source.workflow("stuck:waiter").digest and found.upgraded_from is None
    assert moved.revision == "f" * 64 and moved.upgraded_from == found.revision, "the upgrade record wins"
    assert f"(moved by `flowctl upgrade` from {found.revision[:12]})" in "".join(
        out.text for out in described(moved, as_json=False))
    assert handle.id not in [run.workflow_id for run in stuck.runs]
    assert [run.status for run in running.runs if run.workflow_id == handle.id] == ["running"]


async def test_a_nondeterministic_change_is_flagged_as_nondeterminism(dev_server: Any, tmp_path: Path) -> None:
    changed = tmp_path / "entries"
    shutil.copytree(ENTRIES, changed)
    drifting = changed / "drifting.lua"
    drifting.write_text(drifting.read_text().replace('time.sleep("1h")', "-- the timer is gone"))
    client = await dev_server.client()
    async with lua_worker(client, ENTRIES, versioning="auto_upgrade") as project:
        handle = await project.start("stuck:drifting")
        await handle.query("__stack_trace")  # the timer is in the history
        queue = project.task_queue
    async with terminated_at_end(handle), lua_worker(client, changed, task_queue=queue, versioning="auto_upgrade"):
        started_at = time.monotonic()
        await handle.signal("done", None)  # a new workflow task: the new code replays the history
        failure = await within(REPORTED_WITHIN - (time.monotonic() - started_at),
                               lambda: stuck_failure(client, handle), "describe shows the run stuck")

    assert failure.nondeterminism and failure.cause == "non_deterministic_error"
    assert failure.message.startswith("[TMPRL1100] Nondeterminism error") and "TimerStarted" in failure.message
    assert failure.where is None, "core detects it; no Lua line to point at"


async def test_after_flowctls_own_replay_on_a_new_revision_the_new_revisions_bug_is_shown(dev_server: Any) -> None:
    client = await dev_server.client()
    async with lua_worker(client, ENTRIES, versioning="auto_upgrade") as project:
        handle = await project.start("stuck:waiter")
        async with terminated_at_end(handle):
            await handle.query("__stack_trace")  # its first task ran on the first revision
            old = project.source.workflow("stuck:waiter")
            assert old.source is not None
            project.source.add(with_source(old, old.source.replace('return "done"', 'error("bug after the upgrade")')))
            started_at = time.monotonic()
            # this task fails on purpose (RevisionChanged: Temporal then schedules a fresh attempt 1, which
            # replays on the new revision) and the replay fails on the new revision's bug
            await handle.signal("done", None)
            failure = await within(REPORTED_WITHIN - (time.monotonic() - started_at),
                                   lambda: stuck_failure(client, handle), "the failing replay is reported")

    assert failure.message == "bug after the upgrade" and failure.where == "waiter.lua:5"
    assert failure.failures == 1 and failure.attempt == 2


async def test_a_pending_activity_shows_its_attempt_and_last_failure(dev_server: Any) -> None:
    client = await dev_server.client()

    async def retried_activity() -> dict[str, Any] | None:
        pending = (await describe_execution(client, handle.id)).pending_activities
        return pending[0] if pending and pending[0]["attempt"] >= 2 and pending[0]["last_failure"] else None

    async with lua_worker(client, ENTRIES) as project:
        handle = await project.start("stuck:retrier")
        async with terminated_at_end(handle):
            activity = await within(REPORTED_WITHIN, retried_activity, "a retried activity with its last failure")
            found = await describe_execution(client, handle.id)

    assert activity["activity_type"] == "stuck:always_fails" and activity["maximum_attempts"] == 0
    assert activity["last_failure"] == "UNAVAILABLE: the warehouse is down at always_fails.lua:3"
    assert activity["last_failure_kind"] == "UNAVAILABLE" and "next_attempt_time" in activity
    assert not found.stuck, "a retried activity is not a stuck workflow task"
    assert "pending:    stuck:always_fails attempt" in "".join(out.text for out in described(found, as_json=False))


async def test_run_wait_warns_once_then_gives_up_after_the_stuck_timeout(dev_server: Any) -> None:
    client = await dev_server.client()
    warnings: list[tuple[str, TaskFailure]] = []
    workflow_id = f"wait-stuck-{uuid.uuid4().hex[:8]}"
    async with lua_worker(client, ENTRIES) as project, terminated_at_end(client.get_workflow_handle(workflow_id)):
        outcome = await asyncio.wait_for(
            run_entry(project.source, "stuck:buggy", client=client, wait=True, workflow_id=workflow_id,
                      watch=StuckWatch(stuck_after=1, stuck_timeout=2.0),
                      on_stuck=lambda wf_id, failure: warnings.append((wf_id, failure))),
            REPORTED_WITHIN)
        still = await client.get_workflow_handle(workflow_id).describe()

    assert not outcome.ok and outcome.stuck is not None and outcome.failure is None
    assert [wf_id for wf_id, _ in warnings] == [workflow_id], "one warning"
    assert warnings[0][1].where == "buggy.lua:4" and warnings[0][1].message == "bug: no order nil"
    body = outcome.to_dict()
    assert body["status"] == "stuck" and body["task_failure"]["where"] == "buggy.lua:4"
    assert still.status == WorkflowExecutionStatus.RUNNING, "giving up the wait leaves the run open"


async def test_run_wait_on_a_healthy_run_does_not_warn(dev_server: Any) -> None:
    client = await dev_server.client()
    warnings: list[str] = []
    workflow_id = f"wait-healthy-{uuid.uuid4().hex[:8]}"
    async with lua_worker(client, ENTRIES) as project:
        waited = asyncio.create_task(run_entry(project.source, "stuck:waiter", client=client, wait=True,
                                               workflow_id=workflow_id,
                                               on_stuck=lambda wf_id, failure: warnings.append(wf_id)))
        await asyncio.sleep(2.5)  # the wait looks at the run every second: a few looks
        await client.get_workflow_handle(workflow_id).signal("done", None)
        outcome = await waited

    assert outcome.ok and outcome.result == "done" and outcome.to_dict()["status"] == "completed"
    assert warnings == []


async def test_list_filters_by_entry_and_effective_revision(dev_server: Any) -> None:
    client = await dev_server.client()
    moved_to = "f" * 64
    async with lua_worker(client, ENTRIES) as project:
        waiters = [await project.start("stuck:waiter") for _ in range(2)]
        buggy = await project.start("stuck:buggy")
        async with terminated_at_end(buggy, *waiters):
            digest = project.source.workflow("stuck:waiter").digest
            entries = {"stuck:waiter": "stuck:waiter"}
            upgrades = {(waiters[1].id, waiters[1].result_run_id or ""): moved_to}
            ids = {w.id for w in waiters}
            by_entry = await within(REPORTED_WITHIN, lambda: _listing(client, RunFilter(workflow_type="stuck:waiter"),
                                                                      ids, upgrades), "both waiters are listed")
            at_old = await list_runs(client, RunFilter(workflow_type="stuck:waiter", revision=digest[:10]),
                                     upgrades=upgrades)
            at_new = await list_runs(client, RunFilter(revision=moved_to[:8], query=f"WorkflowId = '{waiters[1].id}'"),
                                     entries=entries, upgrades=upgrades)

    listed = {run.workflow_id: run for run in by_entry.runs}
    assert buggy.id not in listed, "--entry lists that entry's runs only"
    assert listed[waiters[0].id].revision == digest and not listed[waiters[0].id].upgraded
    assert listed[waiters[1].id].revision == moved_to and listed[waiters[1].id].upgraded, "the upgrade record wins"
    assert waiters[0].id in {run.workflow_id for run in at_old.runs}
    assert waiters[1].id not in {run.workflow_id for run in at_old.runs}, "moved away from that revision"
    assert [(run.workflow_id, run.entry_id) for run in at_new.runs] == [(waiters[1].id, "stuck:waiter")]
    assert by_entry.query == "WorkflowType = 'stuck:waiter'"
    assert at_new.to_dict()["runs"][0]["revision"] == moved_to


async def _nonempty(listing: Awaitable[Any]) -> Any:
    found = await listing
    return found if found.runs else None


async def _listing(client: Client, wanted: RunFilter, ids: set[str], upgrades: dict[tuple[str, str], str]) -> Any:
    found = await list_runs(client, wanted, upgrades=upgrades)
    return found if ids <= {run.workflow_id for run in found.runs} else None

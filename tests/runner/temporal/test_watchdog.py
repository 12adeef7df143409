"""The worker's last line of defence (docs/sandbox.md, The watchdog): a supervised serving process, a
watchdog outside it, and quarantined runs.

The call table is written and read across a real process boundary; the dynamic activity is called
in-process (temporalio's ActivityEnvironment) against a real SQLite registry. The end-to-end tests
run a REAL ``flowctl worker`` (the supervisor and its serving child) on the dev server; the stuck C
call is the test-only FLOWCTL_TEST_WATCHDOG_STALL (a print that blocks in C holding the GIL), since
every real one the issue found is fixed by the sandbox's budgets.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from registry.loader import load_project
from registry.open_store import open_store
from registry.plan import compute_plan
from registry.revision import build_revisions
from registry.store import QuarantinedRun, RevisionStore
from runner.client.start import start_workflow
from runner.dev.server import free_port
from runner.revision_source import StoreRevisionSource
from runner.temporal.activities import ActivityRunner
from runner.temporal.failures import to_application_error
from runner.temporal.watchdog import (
    ACTIVITY_CALL,
    STALL_ENV,
    WORKFLOW_CALL,
    CallTable,
    attach,
    encode_texts,
    quarantine_due,
    quarantine_failure,
    watched_activity,
)
from tests.support.paths import ENTRIES, REPO
from tests.support.replay import assert_replays

WATCHDOG = ENTRIES / "watchdog"

# ---------------------------------------------------------------------------- the call table

WRITER = """
import os, sys, time
from runner.temporal.watchdog import WORKFLOW_CALL, CallTable, encode_texts
table = CallTable.attach(int(sys.argv[1]))
texts, lengths, truncated = encode_texts("order-1", "run-1", "", "app:order", "order.lua", "signal 'approve'")
slot = table.begin(WORKFLOW_CALL, texts, lengths, 50, 12)
print("began", flush=True)
sys.stdin.readline()
table.end(slot)
print("ended", flush=True)
sys.stdin.readline()
"""


def test_a_call_recorded_in_another_process_is_read_whole_and_overdue_past_its_allowance() -> None:
    table = CallTable.create()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(table.fd)], pass_fds=(table.fd,), cwd=REPO,
                              env={**os.environ, "PYTHONPATH": str(REPO)}, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdin is not None
        assert writer.stdout.readline() == "began\n"
        [call] = table.running()
        assert (call.kind, call.workflow_id, call.run_id, call.activity_id, call.entry) == (
            "workflow", "order-1", "run-1", "", "app:order")
        assert call.where == "order.lua (signal 'approve')" and call.history_length == 12
        assert call.allowance_ms == 50 and not call.truncated
        time.sleep(0.1)
        assert table.overdue() == [call], "50 ms allowance, 100 ms later"
        assert table.overdue(now_ns=call.started_ns + 10_000_000) == [], "10 ms in: not yet"
        writer.stdin.write("\n")
        writer.stdin.flush()
        assert writer.stdout.readline() == "ended\n"
        assert table.running() == [] and table.overdue() == []
        writer.stdin.write("\n")
        writer.stdin.flush()
        assert writer.wait(timeout=30) == 0
    finally:
        if writer.poll() is None:
            writer.kill()
        table.close()


def test_slots_are_reused_a_full_table_records_nothing_more_and_clear_forgets_every_call() -> None:
    table = CallTable.create(slots=2)
    texts, lengths, _ = encode_texts("w", "r", "", "app:e", "e.lua", "start")
    first = table.begin(WORKFLOW_CALL, texts, lengths, 1000)
    second = table.begin(WORKFLOW_CALL, texts, lengths, 1000)
    assert {first, second} == {0, 1}
    assert table.begin(WORKFLOW_CALL, texts, lengths, 1000) == -1, "no slot left: that call is not watched"
    table.end(-1)  # ending an unwatched call is a no-op
    table.end(first)
    assert [c.run_id for c in table.running()] == ["r"]
    assert table.begin(ACTIVITY_CALL, texts, lengths, 1000) == first, "a freed slot is used again"
    assert sorted(c.kind for c in table.running()) == ["activity", "workflow"]
    table.mark_ready()
    assert table.ready
    table.clear()
    assert table.running() == [] and not table.ready
    table.close()


def test_texts_are_cut_to_their_fields_and_an_id_cut_short_marks_the_call() -> None:
    table = CallTable.create(slots=1)
    texts, lengths, truncated = encode_texts("w" * 1500, "r", "", "app:e", "e.lua", "signal " + "x" * 500)
    assert truncated and lengths[0] == 1000 and lengths[-1] == 200
    table.end(table.begin(WORKFLOW_CALL, texts, lengths, 1000, truncated=truncated))
    table.begin(WORKFLOW_CALL, texts, lengths, 1000, truncated=truncated)
    [call] = table.running()
    assert call.truncated and call.workflow_id == "w" * 1000, "the supervisor cannot quarantine this one"
    assert not encode_texts("w", "r", "", "app:e", "e.lua", "x" * 500)[2], "a long description is no ID"
    table.close()


# ---------------------------------------------------------------------------- quarantine


def record(**fields: Any) -> QuarantinedRun:
    values: dict[str, Any] = {"workflow_id": "order-1", "run_id": "r1", "entry_id": "app:order",
                              "reason": "a Lua call ran 4.1 s, past its 4 s allowance", "where": "order.lua (timer)",
                              "history_length": 7, "actor": "op@box", "at": "2026-01-01T00:00:00.000Z"}
    values.update(fields)
    return QuarantinedRun(**values)


def test_the_run_fails_at_the_task_the_watchdog_stopped_both_when_run_and_when_replayed() -> None:
    stopped_at_7 = record()
    assert not quarantine_due(stopped_at_7, 3, replaying=True), "earlier tasks replay as they ran"
    assert quarantine_due(stopped_at_7, 10, replaying=False), "the retried task, on a new worker"
    assert quarantine_due(stopped_at_7, 10, replaying=True), "the same task, in a replay of the history"
    unknown = record(history_length=0)
    assert not quarantine_due(unknown, 10, replaying=True) and quarantine_due(unknown, 10, replaying=False)


def test_a_quarantined_run_fails_non_retryably_naming_the_watchdog_and_the_lua_location() -> None:
    failure = quarantine_failure(record())
    assert failure.kind == "LIMIT_EXCEEDED" and not failure.retryable and failure.where == "order.lua (timer)"
    assert failure.message.startswith("the worker's watchdog stopped this run at order.lua (timer): a Lua call ran "
                                      "4.1 s, past its 4 s allowance; the worker process was restarted")
    assert failure.details == {"limit": "watchdog", "quarantined": record().to_dict()}
    error = to_application_error(failure)
    assert error.type == "LIMIT_EXCEEDED" and error.non_retryable
    activity = quarantine_failure(record(activity_id="3", where="crunch.lua (activity attempt 1)"))
    assert activity.message.startswith("the worker's watchdog stopped activity 3 of this run at crunch.lua")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RevisionStore]:
    """The watchdog entries applied to a fresh SQLite registry."""
    project = load_project([WATCHDOG])
    assert [d for d in project.diagnostics if d.is_error] == []
    with open_store(str(tmp_path / "registry.db")) as opened:
        opened.apply(compute_plan(build_revisions(project), opened), actor="tester@box")
        yield opened


async def call_crunch(runner: ActivityRunner, activity_id: str) -> Any:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(ActivityEnvironment.default_info(), activity_type="watchdog:crunch",
                                   activity_id=activity_id, workflow_id="order-1", workflow_run_id="r1")
    payload = RawValue(env.payload_converter.to_payload({"a": 2, "b": 3}))
    return await env.run(runner.run, [payload])


async def test_a_quarantined_activity_attempt_fails_at_once_and_other_activities_of_the_run_still_run(
        store: RevisionStore) -> None:
    source = StoreRevisionSource(store, poll_interval=0)
    runner = ActivityRunner(source)
    assert await call_crunch(runner, "3") == {"sum": 5}
    store.quarantine_run(workflow_id="order-1", run_id="r1", activity_id="3", entry_id="watchdog:crunch",
                         reason="a Lua call ran 81.0 s, past its 80 s allowance",
                         where="crunch.lua (activity attempt 1)")
    assert source.quarantined("order-1", "r1", "3") is not None, "the source saw the change token move"
    with pytest.raises(ApplicationError) as stopped:
        await call_crunch(runner, "3")
    assert stopped.value.type == "LIMIT_EXCEEDED" and stopped.value.non_retryable
    assert "watchdog stopped activity 3 of this run at crunch.lua (activity attempt 1)" in stopped.value.message
    assert await call_crunch(runner, "4") == {"sum": 5}, "only the stopped activity is quarantined"
    assert source.quarantined("order-1", "r1") is None, "nor is the run itself"


async def test_a_lua_activity_attempt_is_recorded_while_it_runs(store: RevisionStore) -> None:
    table = CallTable.create()
    seen = []

    def probe(revision: Any) -> str:
        seen.extend(table.running())
        return "ran"

    attach(table, workflow_allowance=4.0, activity_allowance=80.0)
    try:
        revision = StoreRevisionSource(store).activity("watchdog:crunch")
        env = ActivityEnvironment()
        env.info = dataclasses.replace(ActivityEnvironment.default_info(), activity_id="5", attempt=2,
                                       workflow_id="order-1", workflow_run_id="r1")
        assert env.run(watched_activity(probe), revision) == "ran"
    finally:
        attach(None, workflow_allowance=4.0, activity_allowance=80.0)
    [call] = seen
    assert (call.kind, call.workflow_id, call.run_id, call.activity_id, call.entry) == (
        "activity", "order-1", "r1", "5", "watchdog:crunch")
    assert call.where == "crunch.lua (activity attempt 2)" and call.allowance_ms == 80_000
    assert table.running() == [], "cleared when the attempt returned"
    assert watched_activity(probe) is probe, "not supervised: nothing is wrapped, nothing recorded"
    table.close()


# ---------------------------------------------------------------------------- a real flowctl worker


@dataclasses.dataclass
class Served:
    """The watchdog entries applied to a registry, and the `flowctl worker` serving them."""

    root: Path
    env: dict[str, str]
    worker: subprocess.Popen[str] | None = None

    @property
    def log(self) -> Path:
        return self.root / "worker.log"

    def start_worker(self, *args: str, stall: str | None = None) -> None:
        env = {**os.environ, **self.env, **({STALL_ENV: stall} if stall else {})}
        with self.log.open("w") as log:
            self.worker = subprocess.Popen([sys.executable, "-m", "cli", "worker", "--drain-timeout", "5", *args],
                                           cwd=self.root, env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)

    def lines(self, *needles: str) -> list[str]:
        """The log lines (supervisor and serving child share stderr) that contain every needle."""
        text = self.log.read_text() if self.log.exists() else ""
        return [line for line in text.splitlines() if all(n in line for n in needles)]

    def wait_for(self, *needles: str, count: int = 1, timeout: float = 60.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.lines(*needles)
            if len(found) >= count:
                return found
            assert self.worker is not None and self.worker.poll() is None, self.log.read_text()
            time.sleep(0.05)
        raise AssertionError(f"the worker never logged {needles} {count} time(s):\n{self.log.read_text()}")

    async def start(self, client: Client, entry_id: str, value: Any = None) -> WorkflowHandle[Any, Any]:
        with open_store(self.env["FLOWCTL_REGISTRY"], create=False) as store:
            started = await start_workflow(client, StoreRevisionSource(store), entry_id, value)
        return started.handle

    def stop_worker(self) -> int:
        assert self.worker is not None
        if self.worker.poll() is None:
            self.worker.send_signal(signal.SIGTERM)
        return self.worker.wait(timeout=60)


@pytest.fixture
def served(tmp_path: Path, dev_server: Any) -> Iterator[Served]:
    root = tmp_path / "project"
    shutil.copytree(WATCHDOG, root / "entries")
    yaml_file = root / "entries" / "app.yaml"
    yaml_file.write_text(yaml_file.read_text().replace("watchdog-queue", f"watchdog-{uuid.uuid4().hex[:8]}"))
    env = {"TEMPORAL_ADDRESS": dev_server.address, "FLOWCTL_REGISTRY": str(root / "registry.db"),
           "PYTHONPATH": str(REPO)}
    applied = subprocess.run([sys.executable, "-m", "cli", "apply"], cwd=root, env={**os.environ, **env},
                             capture_output=True, text=True, timeout=60)
    assert applied.returncode == 0, applied.stderr
    project = Served(root, env)
    try:
        yield project
    finally:
        if project.worker is not None and project.worker.poll() is None:
            project.worker.kill()
            project.worker.wait(timeout=30)


def metrics(port: int) -> list[str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return str(response.read().decode()).splitlines()


def pids(lines: list[str]) -> list[int]:
    return [int(re.search(r" pid=(\d+)", line).group(1)) for line in lines]  # type: ignore[union-attr]


async def test_a_run_stuck_in_c_is_stopped_quarantined_and_failed_while_a_bystander_completes(
        served: Served, dev_server: Any) -> None:
    metrics_port = free_port()
    served.start_worker("--lua-call-timeout", "1", "--metrics-port", str(metrics_port), stall="watchdog:stalls")
    served.wait_for("event=worker.started")
    client = await dev_server.client()
    bystander = await served.start(client, "watchdog:bystander", {"sleep": "2s"})
    stalls = await served.start(client, "watchdog:stalls")
    run_id = stalls.first_execution_run_id or stalls.result_run_id
    async with asyncio.timeout(90):
        with pytest.raises(WorkflowFailureError) as failed:
            await stalls.result()
        assert await bystander.result() == {"done": True}, "the unrelated run finished on the restarted worker"

    error = failed.value.cause
    assert isinstance(error, ApplicationError) and error.type == "LIMIT_EXCEEDED" and error.non_retryable
    assert error.message.startswith("the worker's watchdog stopped this run at stalls.lua (timer): a Lua call ran ")
    assert "past its 1 s allowance" in error.message
    assert error.details[0]["limit"] == "watchdog"

    [stuck] = served.lines("event=watchdog.stuck")
    for field in (f"workflow_id={stalls.id}", f"run_id={run_id}", "entry=watchdog:stalls", "kind=workflow",
                  'where="stalls.lua (timer)"', "allowance=1s"):
        assert field in stuck, stuck
    assert served.lines("event=watchdog.killed")
    assert served.lines("event=watchdog.quarantined", f"run_id={run_id}")
    assert served.lines("event=supervisor.restarting", "reason=watchdog")
    started = pids(served.lines("event=supervisor.child_started"))
    assert len(started) == 2 and len(set(started)) == 2 and pids([stuck]) == started[:1]
    assert len(served.lines("event=worker.started")) == 2
    assert served.lines("calling into C") == [], "the print never returned, and was not run again"
    with open_store(served.env["FLOWCTL_REGISTRY"], create=False) as store:
        [quarantined] = store.quarantined_runs(stalls.id)
        # the failure is part of the history: a replay against the registry fails at the same task
        await assert_replays(StoreRevisionSource(store), await stalls.fetch_history(), times=3)
    assert (quarantined.run_id, quarantined.entry_id, quarantined.where) == (run_id, "watchdog:stalls",
                                                                             "stalls.lua (timer)")
    assert quarantined.history_length > 3, "stopped in its second workflow task, not its first"
    described = subprocess.run([sys.executable, "-m", "cli", "describe", stalls.id], cwd=served.root,
                               env={**os.environ, **served.env}, capture_output=True, encoding="utf-8", timeout=60)
    assert described.returncode == 0, described.stderr
    assert f"  quarantined: {error.message}\n" in described.stdout, described.stdout
    kills = [line for line in metrics(metrics_port) if line.startswith("flowctl_watchdog_kills{")]
    assert len(kills) == 1 and 'entry="watchdog:stalls"' in kills[0] and 'kind="workflow"' in kills[0], kills
    assert kills[0].endswith(" 1"), "counted by the restarted serving process"

    assert served.stop_worker() == 0, served.log.read_text()
    assert served.lines("event=worker.stopped") and served.lines("event=supervisor.stopped", "status=0")
    assert "Traceback" not in served.log.read_text()


async def test_a_serving_process_that_dies_is_restarted_and_dies_with_its_supervisor(
        served: Served, dev_server: Any) -> None:
    served.start_worker()
    first = pids(served.wait_for("event=supervisor.child_started"))[0]
    served.wait_for("event=worker.started")
    os.kill(first, signal.SIGKILL)
    served.wait_for("event=supervisor.child_exited", "signal=SIGKILL")
    served.wait_for("event=supervisor.restarting", "reason=exited")
    served.wait_for("event=worker.started", count=2)
    second = pids(served.lines("event=supervisor.child_started"))[1]
    assert second != first
    client = await dev_server.client()
    handle = await served.start(client, "watchdog:bystander", {"sleep": "100ms"})
    async with asyncio.timeout(60):
        assert await handle.result() == {"done": True}, "the restarted process serves"

    assert served.worker is not None
    served.worker.kill()  # SIGKILL to `flowctl worker` itself: no serving orphan is left behind
    served.worker.wait(timeout=30)
    deadline = time.monotonic() + 10
    while _alive(second) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(second)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"  # a zombie is dead, just not reaped yet
    except FileNotFoundError:
        return False


def test_a_worker_that_cannot_start_is_not_restarted_and_exits_with_its_status(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "cli", "worker", "--registry", str(tmp_path / "empty.db")],
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1, done.stderr
    assert "the registry has no temporal.worker entries" in done.stderr
    assert done.stderr.count("event=supervisor.child_started") == 1
    assert "event=supervisor.restarting" not in done.stderr
    assert "Traceback" not in done.stderr

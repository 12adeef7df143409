"""``flowctl upgrade`` on the real dev server, with a real pinned ``flowctl worker`` process.

A pinned run stuck on ``error("bug")`` stays on its revision after a fix is applied; ``flowctl
upgrade`` moves it (after replaying its history on the fix) and it completes with the fixed
code's result. A "fix" that issues other commands for the recorded history is refused with the
divergence and nothing is recorded; ``--dry-run`` records nothing; ``--all --entry --from``
moves every run at a revision, and the move survives a worker restart.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli import main
from registry.open_store import open_store
from tests.support.paths import REPO

ENTRY_FILE = """\
version: "1.0"
namespace: fix
entries:
  - {name: client, kind: temporal.client, address: "${env:TEMPORAL_ADDRESS}"}
  - {name: worker, kind: temporal.worker, client: fix:client, task_queue: QUEUE}
  - name: job
    kind: workflow.lua
    source: file://job.lua
    modules: [funcs, process, time]
    meta: {temporal: {workflow: {worker: fix:worker}}}
  - name: step
    kind: function.lua
    source: file://step.lua
    meta: {temporal: {activity: {worker: fix:worker}}}
"""
STEP = 'return {main = function(input) return "step " .. input.n end}\n'
#: each revision of job.lua: one recorded activity, then what the revision does after it
BUGGY = 'return {main = function()\n    local a = funcs.call("fix:step", {n = 1})\n    error("bug")\nend}\n'
FIXED = ('return {main = function()\n    local a = funcs.call("fix:step", {n = 1})\n'
         '    return {a = a, b = funcs.call("fix:step", {n = 2}), code = "fixed"}\nend}\n')
#: a timer before the activity: other commands for the recorded history
INCOMPATIBLE = ('return {main = function()\n    time.sleep("1s")\n'
                '    return {a = funcs.call("fix:step", {n = 1}), code = "timer first"}\nend}\n')
WAITING = ('return {main = function()\n    local a = funcs.call("fix:step", {n = 1})\n'
           '    process.listen("go"):receive()\n    return {a = a, code = "CODE"}\nend}\n')


class Project:
    """An entries directory applied to its own registry, served by `flowctl worker` processes."""

    def __init__(self, root: Path, address: str) -> None:
        self.root = root
        self.entries = root / "entries"
        self.entries.mkdir(parents=True)
        (self.entries / "app.yaml").write_text(ENTRY_FILE.replace("QUEUE", f"fix-{uuid.uuid4().hex[:8]}"))
        (self.entries / "step.lua").write_text(STEP)
        self.env = {"TEMPORAL_ADDRESS": address, "FLOWCTL_REGISTRY": str(root / "registry.db"),
                    "FLOWCTL_ENTRIES": str(self.entries)}
        self.worker: subprocess.Popen[str] | None = None

    def flowctl(self, *args: str) -> Result:
        return CliRunner().invoke(main, list(args), env=self.env)

    def apply(self, job: str) -> str:
        """Apply ``job`` as job.lua; the digest of the revision it made."""
        (self.entries / "job.lua").write_text(job)
        applied = self.flowctl("apply")
        assert applied.exit_code == 0, applied.output
        return self.current()

    def current(self) -> str:
        with open_store(self.env["FLOWCTL_REGISTRY"], create=False) as store:
            revision = store.current("fix:job")
            assert revision is not None
            return revision.digest

    def upgrades(self) -> dict[tuple[str, str], Any]:
        with open_store(self.env["FLOWCTL_REGISTRY"], create=False) as store:
            return store.run_upgrades()

    def start(self, workflow_id: str) -> str:
        """Start fix:job as ``workflow_id`` (pinned to the current revision); its run id."""
        started = self.flowctl("run", "fix:job", "--id", workflow_id, "--json")
        assert started.exit_code == 0, started.output
        run_id: str = json.loads(started.output)["run_id"]
        return run_id

    def start_worker(self) -> None:
        assert self.worker is None
        self.worker = subprocess.Popen([sys.executable, "-m", "cli", "worker", "--poll-interval", "0.2"],
                                       cwd=self.root, env={**os.environ, **self.env, "PYTHONPATH": str(REPO)},
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)

    def kill_worker(self) -> None:
        assert self.worker is not None
        os.kill(self.worker.pid, signal.SIGKILL)
        self.worker.wait(timeout=30)
        self.worker = None

    def stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.send_signal(signal.SIGTERM)
            self.worker.wait(timeout=60)
            self.worker = None


@pytest.fixture
def project(tmp_path: Path, dev_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    monkeypatch.chdir(tmp_path)  # apply's analysis cache (.flowctl/) goes here
    served = Project(tmp_path / "project", dev_server.address)
    try:
        yield served
    finally:
        served.stop_worker()


def eventually(check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def describe(project: Project, workflow_id: str) -> dict[str, Any]:
    described = project.flowctl("describe", workflow_id, "--json")
    assert described.exit_code == 0, described.output
    info: dict[str, Any] = json.loads(described.output)
    return info


def completed(project: Project, workflow_id: str) -> dict[str, Any]:
    """The result of ``workflow_id`` once it completed (a stuck run is retried with backoff: allow a minute)."""

    def check() -> dict[str, Any]:
        info = describe(project, workflow_id)
        assert info["status"] == "completed", info
        result: dict[str, Any] = info["result"]
        return result

    return eventually(check, timeout=90.0)


def task_attempt(dev_server: Any, workflow_id: str) -> int:
    """The attempt of the run's pending workflow task (2 and more: it failed and Temporal retries it)."""

    async def attempt() -> int:
        client = await dev_server.connect()
        desc = await client.get_workflow_handle(workflow_id).describe()
        return int(desc.raw_description.pending_workflow_task.attempt)

    return asyncio.run(attempt())


def wait_for_activity(dev_server: Any, workflow_id: str) -> None:
    """Until the run recorded its first activity's completion (a history the replay checks)."""

    async def recorded() -> bool:
        client = await dev_server.connect()
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        return any(e.HasField("activity_task_completed_event_attributes") for e in history.events)

    eventually(lambda: _true(asyncio.run(recorded())))


def _true(value: bool) -> None:
    assert value


def test_a_stuck_run_moves_to_a_fixed_revision_and_completes_with_its_result(project: Project,
                                                                           dev_server: Any) -> None:
    buggy = project.apply(BUGGY)
    project.start_worker()
    run_id = project.start("stuck-1")
    eventually(lambda: _true(task_attempt(dev_server, "stuck-1") >= 2))  # error("bug") fails the task, retried

    fixed = project.apply(FIXED)
    incompatible = project.apply(INCOMPATIBLE)  # now the current revision
    assert describe(project, "stuck-1")["status"] == "running", "the pinned run stays on its buggy revision"

    refused = project.flowctl("upgrade", "stuck-1")  # --to current: the incompatible "fix"
    assert refused.exit_code == 1, refused.output
    assert f"do not replay on revision {incompatible[:12]}; nothing recorded" in refused.output
    assert f"DIVERGED  stuck-1 (run {run_id})" in refused.output
    assert "history event 5 is `activity fix:step`, but the new code issues `timer 1s`" in refused.output
    assert "at job.lua:2" in refused.output
    as_json = json.loads(project.flowctl("upgrade", "stuck-1", "--json").output)
    assert as_json["ok"] is False and as_json["event"] is None
    assert as_json["runs"][0] | {"events": 0} == {
        "workflow_id": "stuck-1", "run_id": run_id, "from": buggy, "status": "diverged", "events": 0,
        "message": "history event 5 is `activity fix:step`, but the new code issues `timer 1s`",
        "where": "job.lua:2"}
    assert project.upgrades() == {}, "a refused upgrade records nothing"

    dry = project.flowctl("upgrade", "stuck-1", "--to", fixed[:10], "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert f"1 run(s) would move to revision {fixed[:12]} (dry run: nothing recorded)" in dry.output
    assert f"stuck-1 (run {run_id}) {buggy[:12]} -> {fixed[:12]}" in dry.output
    assert project.upgrades() == {}

    moved = project.flowctl("upgrade", "stuck-1", "--to", fixed[:10], "--reason", "fix the bug")
    assert moved.exit_code == 0, moved.output
    assert f"moved 1 run(s) to revision {fixed[:12]}" in moved.output
    assert completed(project, "stuck-1") == {"a": "step 1", "b": "step 2", "code": "fixed"}
    upgrade = project.upgrades()[("stuck-1", run_id)]
    assert (upgrade.digest, upgrade.previous_digest) == (fixed, buggy)

    history = project.flowctl("registry", "history", "fix:job")
    assert history.exit_code == 0, history.output
    assert "upgrade by" in history.output and "note: fix the bug" in history.output
    assert f"fix:job run stuck-1 ({run_id}) upgraded {buggy[:12]} -> {fixed[:12]}" in history.output

    closed = project.flowctl("upgrade", "stuck-1")
    assert closed.exit_code == 1
    assert f"stuck-1 (run {run_id}) is completed: only open runs can be upgraded" in closed.output


def test_upgrade_all_moves_every_run_at_a_revision_and_the_move_survives_a_worker_restart(
        project: Project, dev_server: Any) -> None:
    v1 = project.apply(WAITING.replace("CODE", "v1"))
    project.start_worker()
    runs = {workflow_id: project.start(workflow_id) for workflow_id in ("wait-1", "wait-2", "wait-3")}
    for workflow_id in runs:
        wait_for_activity(dev_server, workflow_id)
    v2 = project.apply(WAITING.replace("CODE", "v2"))
    project.start("wait-new")  # pinned to v2: not a run at --from v1
    wait_for_activity(dev_server, "wait-new")

    dry = json.loads(project.flowctl("upgrade", "--all", "--entry", "fix:job", "--from", v1[:8], "--dry-run",
                                     "--json").output)
    assert dry["ok"] and dry["dry_run"] and dry["event"] is None
    assert {run["workflow_id"]: run["status"] for run in dry["runs"]} == dict.fromkeys(runs, "would_move")
    assert project.upgrades() == {}

    moved = project.flowctl("upgrade", "--all", "--entry", "fix:job", "--from", v1[:8], "--json")
    assert moved.exit_code == 0, moved.output
    body = json.loads(moved.output)
    assert body["to"] == v2 and isinstance(body["event"], int)
    assert {(run["workflow_id"], run["run_id"], run["from"], run["status"]) for run in body["runs"]} == {
        (workflow_id, run_id, v1, "moved") for workflow_id, run_id in runs.items()}

    # wait-1 is cached on the running worker: its next task notices the move (within the poll interval)
    time.sleep(1.0)
    assert project.flowctl("signal", "wait-1", "go").exit_code == 0
    assert completed(project, "wait-1") == {"a": "step 1", "code": "v2"}

    # a new worker process knows the other runs only from the registry
    project.kill_worker()
    project.start_worker()
    for workflow_id in ("wait-2", "wait-3", "wait-new"):
        assert project.flowctl("signal", workflow_id, "go").exit_code == 0
    for workflow_id in ("wait-2", "wait-3", "wait-new"):
        assert completed(project, workflow_id) == {"a": "step 1", "code": "v2"}

    again = project.flowctl("upgrade", "--all", "--entry", "fix:job", "--from", v1[:8])
    assert again.exit_code == 1 and f"no open run of fix:job executes revision {v1[:12]}" in again.output


def test_a_run_already_at_the_target_is_left_alone(project: Project, dev_server: Any) -> None:
    current = project.apply(WAITING.replace("CODE", "v1"))
    project.start_worker()
    run_id = project.start("at-target")
    wait_for_activity(dev_server, "at-target")
    done = project.flowctl("upgrade", "at-target", "--to", "current")
    assert done.exit_code == 0, done.output
    assert f"nothing to move, every run already executes revision {current[:12]}" in done.output
    assert f"at-target (run {run_id}) already executes {current[:12]}" in done.output
    assert project.upgrades() == {}
    assert project.flowctl("terminate", "at-target").exit_code == 0


def test_bad_requests_are_clear_errors(project: Project, dev_server: Any) -> None:
    project.apply(WAITING.replace("CODE", "v1"))
    usage = project.flowctl("upgrade", "--all", "--entry", "fix:job")
    assert usage.exit_code == 2 and "pass WORKFLOW_ID, or --all --entry ID --from REV" in usage.output
    missing = project.flowctl("upgrade", "no-such-run")
    assert missing.exit_code == 1 and "no workflow execution 'no-such-run'" in missing.output
    unknown = project.flowctl("upgrade", "--all", "--entry", "fix:job", "--from", "abc123")
    assert unknown.exit_code == 1 and "fix:job has no revision abc123" in unknown.output
    not_a_workflow = project.flowctl("upgrade", "--all", "--entry", "fix:step", "--from", "abc123")
    assert not_a_workflow.exit_code == 1 and "workflow 'fix:step' is not in the registry" in not_a_workflow.output


def test_runs_of_an_auto_upgrade_worker_are_not_moved(project: Project) -> None:
    app = project.entries / "app.yaml"
    app.write_text(app.read_text().replace("task_queue: ", "versioning: auto_upgrade, task_queue: "))
    current = project.apply(WAITING.replace("CODE", "v1"))
    refused = project.flowctl("upgrade", "--all", "--entry", "fix:job", "--from", current[:8])
    assert refused.exit_code == 1
    assert "fix:job is served by fix:worker, an auto_upgrade worker" in refused.output
    assert project.upgrades() == {}

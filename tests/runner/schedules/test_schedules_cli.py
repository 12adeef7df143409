"""Schedules end to end: `flowctl apply|diff|schedule ...` subprocesses, a `flowctl worker` process serving the runs,
the session's real dev server running the schedule in real time (every 2 s), and Temporal's own CLI looking at it.

The tests share one deployment and run in order: the schedule runs and is updated in place; it is paused,
triggered, unpaused and backfilled; its entry is removed (kept) and pruned (deleted).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from runner.dev.binaries import find_temporal_cli
from runner.dev.server import free_port
from tests.runner.schedules import TICK, schedule_project, set_schedules
from tests.support.paths import EXAMPLES, REPO


@dataclass
class Deployment:
    """A schedule project applied to its registry and served by a `flowctl worker` process."""

    root: Path
    entries: Path
    ns: str
    env: dict[str, str]

    @property
    def tick(self) -> str:
        return f"{self.ns}:tick"

    def flowctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cli", *args], cwd=self.root, capture_output=True, text=True,
                              env={**os.environ, **self.env}, timeout=120)

    def temporal_describe(self) -> subprocess.CompletedProcess[str]:
        """Temporal's own CLI: ``temporal schedule describe`` as JSON."""
        return subprocess.run([str(find_temporal_cli()), "schedule", "describe", "--address",
                               self.env["TEMPORAL_ADDRESS"], "--schedule-id", self.tick, "-o", "json"],
                              capture_output=True, text=True, timeout=60)

    def described(self) -> dict[str, Any]:
        done = self.temporal_describe()
        assert done.returncode == 0, done.stderr
        found: dict[str, Any] = json.loads(done.stdout)
        return found


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory, dev_server: Any) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("schedules-cli")
    entries, ns = schedule_project(root)
    env = {"TEMPORAL_ADDRESS": dev_server.address, "FLOWCTL_REGISTRY": str(root / "registry.db"),
           "PYTHONPATH": str(REPO)}
    deployment = Deployment(root, entries, ns, env)
    worker = subprocess.Popen([sys.executable, "-m", "cli", "worker", "--poll-interval", "0.2"], cwd=root,
                              env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        yield deployment
    finally:
        set_schedules(entries, ns, "")
        deployment.flowctl("apply", "--prune")  # no schedule keeps starting runs on the shared server
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=60)


async def completed(client: Client, deployed: Deployment, *, at_least: int, where: str = "",
                    timeout: float = 60.0) -> list[tuple[str, Any]]:
    """The completed runs of the schedule's workflow (workflow ID, result), once there are ``at_least``."""
    query = f"WorkflowType = '{deployed.ns}:report' AND ExecutionStatus = 'Completed'{where}"
    async with asyncio.timeout(timeout):
        while True:
            runs = [run async for run in client.list_workflows(query)]
            if len(runs) >= at_least:
                return [(run.id, await client.get_workflow_handle(run.id, run_id=run.run_id).result())
                        for run in runs]
            await asyncio.sleep(0.5)


async def test_an_interval_schedule_runs_and_is_updated_in_place(deployed: Deployment, dev_server: Any) -> None:
    client = await dev_server.client()
    first = deployed.flowctl("apply")
    assert first.returncode == 0, first.stderr
    assert f"schedule {deployed.tick} (on {deployed.ns}:client) created" in first.stdout
    runs = await completed(client, deployed, at_least=2)
    assert all(run_id.startswith("tick-") and result == {"n": 1} for run_id, result in runs), runs

    set_schedules(deployed.entries, deployed.ns, TICK.replace("every: 2s", "every: 3s").replace("n: 1", "n: 2"))
    diff = deployed.flowctl("diff")
    assert diff.returncode == 1, diff.stderr
    assert f"~ {deployed.tick} (on {deployed.ns}:client) update: spec, action" in diff.stdout
    changed = deployed.flowctl("apply")
    assert changed.returncode == 0, changed.stderr
    assert f"schedule {deployed.tick} (on {deployed.ns}:client) updated (spec, action)" in changed.stdout
    described = deployed.described()  # the same schedule ID, its new spec and input
    assert described["schedule"]["spec"]["interval"] == [{"interval": "3s"}]
    start = described["schedule"]["action"]["startWorkflow"]
    assert start["workflowType"]["name"] == f"{deployed.ns}:report"
    assert start["taskQueue"]["name"] == f"{deployed.ns}-queue"
    updated_at = described["info"]["updateTime"]
    # the next whole second: the query compares seconds, and a run started by the old spec in this one must not count
    since = (datetime.now(UTC) + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    later = await completed(client, deployed, at_least=1, where=f" AND StartTime > '{since}'")
    assert {result["n"] for _, result in later} == {2}

    again = deployed.flowctl("apply")
    assert again.returncode == 0, again.stderr
    assert f"schedule {deployed.tick} (on {deployed.ns}:client) unchanged" in again.stdout
    assert "applied as event" not in again.stdout
    assert deployed.flowctl("diff").returncode == 0
    assert deployed.described()["info"]["updateTime"] == updated_at, "an unchanged tree changes nothing"
    listed = deployed.flowctl("schedule", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    row = next(s for s in json.loads(listed.stdout)["schedules"] if s["id"] == deployed.tick)
    assert row["entry"] == deployed.tick and row["paused"] is False and not row["behind"]
    assert row["applied_revision"] == row["current_revision"]


async def test_pause_trigger_unpause_and_backfill(deployed: Deployment, dev_server: Any) -> None:
    client = await dev_server.client()
    paused = deployed.flowctl("schedule", "pause", deployed.tick, "--note", "db maintenance")
    assert paused.returncode == 0, paused.stderr
    assert paused.stdout == f"{deployed.tick} paused: db maintenance\n"
    assert deployed.described()["schedule"]["state"] == {"notes": "db maintenance", "paused": True}
    assert f"schedule {deployed.tick} (on {deployed.ns}:client) unchanged (paused on the cluster: 'db maintenance'" \
        in deployed.flowctl("apply").stdout, "apply keeps an operator's pause"

    # the bare entry name will do; allow_all: a run of the schedule's that is just ending cannot skip this one
    triggered = deployed.flowctl("schedule", "trigger", "tick", "--overlap", "allow_all", "--json")
    assert triggered.returncode == 0, triggered.stderr
    run = json.loads(triggered.stdout)
    assert run["action"] == "trigger" and run["workflow_id"].startswith("tick-"), run
    result = await client.get_workflow_handle(run["workflow_id"], run_id=run["run_id"]).result()
    assert result == {"n": 2}

    unpaused = deployed.flowctl("schedule", "unpause", deployed.tick)
    assert unpaused.returncode == 0 and deployed.described()["schedule"]["state"].get("paused") is not True

    # a window an hour ago that holds three of the 3 s interval's times, none on its edges
    base = (int(datetime.now(UTC).timestamp()) - 3600) // 3 * 3
    window = (datetime.fromtimestamp(base + 1, UTC), datetime.fromtimestamp(base + 11, UTC))
    expected = {f"tick-{datetime.fromtimestamp(base + k, UTC):%Y-%m-%dT%H:%M:%SZ}" for k in (3, 6, 9)}
    backfill = deployed.flowctl("schedule", "backfill", deployed.tick, "--from", window[0].isoformat(),
                                "--to", window[1].isoformat(), "--overlap", "allow_all")
    assert backfill.returncode == 0, backfill.stderr
    assert backfill.stdout.startswith(f"{deployed.tick} backfill requested: ")
    assert backfill.stdout.endswith(", overlap allow_all\n")
    ids = " OR ".join(f"WorkflowId = '{workflow_id}'" for workflow_id in sorted(expected))
    backfilled = await completed(client, deployed, at_least=3, where=f" AND ({ids})")
    assert {workflow_id for workflow_id, _ in backfilled} == expected

    described = deployed.flowctl("schedule", "describe", deployed.tick, "--next", "3")
    assert described.returncode == 0, described.stderr
    assert described.stdout.startswith(f"{deployed.tick}  active (unpaused with flowctl)\n")
    assert f"  entry:      {deployed.tick}, applied from revision " in described.stdout
    assert f"  starts:     {deployed.ns}:report on {deployed.ns}-queue, workflow ID tick-<time>\n" in described.stdout
    assert "  spec:       every 3s\n" in described.stdout
    assert len(described.stdout.split("  next:")[1].split("  recent:")[0].splitlines()) == 3, "--next 3"
    assert f"(run {run['run_id']}) completed: {{\"n\": 2}}" in described.stdout, "the triggered run and its result"
    details = json.loads(deployed.flowctl("schedule", "describe", deployed.tick, "--json").stdout)
    assert len(details["next_times"]) == 5 and details["recent"] and details["actions"] >= 5
    assert all(r["run_id"] for r in details["recent"]) and {"completed"} & {r["status"] for r in details["recent"]}


def test_a_removed_entry_is_kept_until_apply_prune(deployed: Deployment) -> None:
    set_schedules(deployed.entries, deployed.ns, "")
    kept = deployed.flowctl("apply")
    assert kept.returncode == 0, kept.stderr
    assert f"schedule {deployed.tick} (on {deployed.ns}:client) kept (gone from the tree; apply --prune deletes it)" \
        in kept.stdout
    assert deployed.temporal_describe().returncode == 0, "still on the cluster"
    assert f"- {deployed.tick} (on {deployed.ns}:client) delete" in deployed.flowctl("diff", "--prune").stdout
    pruned = deployed.flowctl("apply", "--prune")
    assert pruned.returncode == 0, pruned.stderr
    assert f"schedule {deployed.tick} (on {deployed.ns}:client) deleted" in pruned.stdout
    gone = deployed.temporal_describe()
    assert gone.returncode != 0 and "not found" in (gone.stderr + gone.stdout).lower()
    assert deployed.flowctl("schedule", "describe", deployed.tick).returncode == 1


@pytest.mark.temporal  # starts its own dev server
def test_flowctl_dev_creates_the_example_projects_schedule_and_the_demo_stays_green(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "entries", ignore=shutil.ignore_patterns("*_test.lua", "golden"))
    port = str(free_port())

    def dev() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cli", "dev", "--demo", "--port", port, "--ui-port", "0"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=180,
                              env={**os.environ, "PYTHONPATH": str(REPO)})

    first = dev()
    assert first.returncode == 0, first.stderr
    assert "schedule app:nightly (on app:client) created" in first.stdout
    assert "demo: order-workflow-" in first.stdout and " completed" in first.stdout
    second = dev()  # the dev server keeps its state in .flowctl/: the schedule is there already
    assert second.returncode == 0, second.stderr
    assert "schedule app:nightly (on app:client) unchanged" in second.stdout

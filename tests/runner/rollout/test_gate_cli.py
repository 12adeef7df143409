"""The replay gate end to end: `flowctl apply` / `flowctl diff` subprocesses against open runs served by a real
`flowctl worker` process with an auto_upgrade worker; and an apply with no server to reach."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle

from registry.open_store import open_store
from runner.client.start import NO_INPUT, start_workflow
from runner.dev.server import free_port
from runner.revision_source import StoreRevisionSource
from tests.runner.rollout import apply_change, gate_project, listed, restore, waiting
from tests.support.histories import events
from tests.support.paths import REPO


@dataclass
class Deployment:
    """A project applied to its registry and served by a `flowctl worker` process."""

    root: Path
    entries: Path
    ns: str
    env: dict[str, str]

    def flowctl(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cli", *args], cwd=self.root, capture_output=True, text=True,
                              env={**os.environ, **self.env, **(env or {})}, timeout=120)

    def change_token(self) -> str:
        with open_store(self.env["FLOWCTL_REGISTRY"], create=False) as store:
            return store.change_token()

    async def start(self, client: Any, entry: str, input: Any = NO_INPUT) -> WorkflowHandle[Any, Any]:
        with open_store(self.env["FLOWCTL_REGISTRY"], create=False) as store:
            started = await start_workflow(client, StoreRevisionSource(store), f"{self.ns}:{entry}", input)
        return started.handle


def deployment(root: Path, address: str) -> Deployment:
    entries, ns = gate_project(root)
    env = {"TEMPORAL_ADDRESS": address, "FLOWCTL_REGISTRY": str(root / "registry.db"), "PYTHONPATH": str(REPO)}
    deployed = Deployment(root, entries, ns, env)
    applied = deployed.flowctl("apply")
    assert applied.returncode == 0, applied.stderr
    return deployed


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, dev_server: Any) -> Iterator[Deployment]:
    deployed = deployment(tmp_path_factory.mktemp("gate-cli"), dev_server.address)
    worker = subprocess.Popen([sys.executable, "-m", "cli", "worker", "--poll-interval", "0.2"], cwd=deployed.root,
                              env={**os.environ, **deployed.env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
    try:
        yield deployed
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=60)


async def test_apply_refuses_breaking_changes_then_applies_the_guarded_one(served: Deployment, dev_server: Any) -> None:
    client = await dev_server.client()
    old = await served.start(client, "order", {"amount": 5})
    await waiting(old, "activity_task_completed_event_attributes")
    await listed(client, f"{served.ns}:order", {old.result_run_id or ""})
    token = served.change_token()
    try:
        apply_change(served.entries, "order_swapped", "order")
        dry = served.flowctl("apply", "--dry-run")
        assert dry.returncode == 1, "a dry run runs the gate too"
        assert f"{served.ns}:order: 1 run diverged: {old.id} ({old.result_run_id}, open)" in dry.stdout
        assert f"history event 5: `activity {served.ns}:charge`" in dry.stdout
        assert f"the new code issues `activity {served.ns}:refund` at order.lua:3" in dry.stdout
        assert "error: the replay gate refused: 1 run would fail on the new code" in dry.stderr

        diff = served.flowctl("diff", "--json")
        assert diff.returncode == 1, diff.stderr
        gate = json.loads(diff.stdout)["gate"]
        assert gate["ok"] is False and gate["runs"] == 1 and gate["seconds"] > 0
        assert gate["divergences"][0]["run_id"] == old.result_run_id
        as_json = served.flowctl("apply", "--json")
        body = json.loads(as_json.stdout)
        assert as_json.returncode == 1 and body["ok"] is False and body["event"] is None
        assert body["gate"]["divergences"][0]["where"] == "order.lua:3"

        apply_change(served.entries, "order_timer", "order")
        refused = served.flowctl("apply")
        assert refused.returncode == 1
        assert f"({old.result_run_id}, open)" in refused.stdout
        assert "the new code issues `timer 1s` at order.lua:3" in refused.stdout
        assert 'fix: if workflow.version("order-' in refused.stdout
        assert served.change_token() == token, "a refused apply writes nothing"

        apply_change(served.entries, "order_wrapped", "order")
        assert "replay gate: ok: 1 run of 1 workflow replay on the new revisions" in served.flowctl("diff").stdout
        applied = served.flowctl("apply")
        assert applied.returncode == 0, applied.stderr
        assert "replay gate: ok: 1 run of 1 workflow" in applied.stdout
        assert "note: replay gate: 1 run of 1 workflow replayed in" in served.flowctl("registry", "history").stdout
    finally:
        restore(served.entries, "order")

    await asyncio.sleep(1)  # the worker sees the apply within its --poll-interval (0.2 s); an earlier run would
    # start on the old revision and move to the new one without a marker, like the old run
    new = await served.start(client, "order", {"amount": 7})
    await waiting(new, "activity_task_completed_event_attributes")
    for handle in (old, new):
        await handle.signal("ship", None)
    assert await old.result() == {"receipt": "charged 5", "code": "B", "version": 1}, \
        "the open run finished on the new code, in the branch of runs that started before the change"
    assert await new.result() == {"receipt": "charged 7", "code": "B", "version": 2}
    assert events(await old.fetch_history(), "timer_started_event_attributes") == []
    assert len(events(await new.fetch_history(), "timer_started_event_attributes")) == 1


async def test_apply_refuses_removing_a_workflow_version_an_open_run_recorded(
        served: Deployment, dev_server: Any) -> None:
    client = await dev_server.client()
    run = await served.start(client, "versioned")
    await waiting(run, "marker_recorded_event_attributes")
    await listed(client, f"{served.ns}:versioned", {run.result_run_id or ""})
    token = served.change_token()
    try:
        apply_change(served.entries, "versioned_removed", "versioned")
        refused = served.flowctl("apply")
    finally:
        restore(served.entries, "versioned")
    assert refused.returncode == 1 and served.change_token() == token
    assert f"{served.ns}:versioned: 1 run diverged: {run.id} ({run.result_run_id}, open)" in refused.stdout
    assert "history event 5: `marker ship-v2@v2 (workflow.version)`" in refused.stdout
    assert 'fix: workflow.version("ship-v2", 1, 2)' in refused.stdout
    assert "keep this call where the registry's revision has it (versioned.lua:3)" in refused.stdout
    await run.signal("ship", None)
    assert await run.result() == {"version": 2}


def test_no_server_refuses_unless_no_gate_with_a_reason(tmp_path: Path) -> None:
    port = free_port()
    deployed = deployment(tmp_path, f"127.0.0.1:{port}")  # created entries: nothing to check, no server needed
    (deployed.entries / "report.lua").write_text(
        (deployed.entries / "report.lua").read_text().replace("Served by", "Served only by"))
    assert deployed.flowctl("apply").returncode == 0, "a pinned workflow's change never contacts the server"

    apply_change(deployed.entries, "order_swapped", "order")
    token = deployed.change_token()
    refused = deployed.flowctl("apply")
    assert refused.returncode == 1 and deployed.change_token() == token
    assert f"error: the replay gate cannot check the runs of {deployed.ns}:order: {deployed.ns}:client: cannot " \
           f"connect to Temporal at 127.0.0.1:{port}" in refused.stderr
    assert "hint: start Temporal or fix the temporal.client entry; to apply without the gate: `flowctl apply " \
           "--no-gate --reason TEXT`" in refused.stderr
    assert json.loads(deployed.flowctl("apply", "--json").stdout)["gate"]["error"].startswith("the replay gate")

    for half in (["--no-gate"], ["--reason", "why"]):
        usage = deployed.flowctl("apply", *half)
        assert usage.returncode == 2 and "--no-gate and --reason TEXT go together" in usage.stderr

    skipped = deployed.flowctl("apply", "--no-gate", "--reason", "temporal is down for maintenance")
    assert skipped.returncode == 0, skipped.stderr
    assert "replay gate: skipped (--no-gate): temporal is down for maintenance" in skipped.stdout
    history = deployed.flowctl("registry", "history", f"{deployed.ns}:order", "--limit", "1").stdout
    assert "note: replay gate skipped (--no-gate): temporal is down for maintenance" in history

"""flowctl run --wait, describe and list on stuck runs: a real `flowctl worker` process, the real `flowctl` CLI."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli import main
from tests.support.paths import REPO

ENTRIES = REPO / "tests" / "runner" / "client" / "entries_stuck"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, dev_server: Any) -> Iterator[dict[str, str]]:
    """The stuck entries applied to a fresh registry and served by a real `flowctl worker` process."""
    root = tmp_path_factory.mktemp("stuck")
    shutil.copytree(ENTRIES, root / "entries")
    env = {"TEMPORAL_ADDRESS": dev_server.address, "FLOWCTL_REGISTRY": str(root / "registry.db"),
           "PYTHONPATH": str(REPO)}
    applied = subprocess.run([sys.executable, "-m", "cli", "apply"], cwd=root, env={**os.environ, **env},
                             capture_output=True, text=True, timeout=60)
    assert applied.returncode == 0, applied.stderr
    with (root / "worker.log").open("w") as log:  # a file: a stuck run logs its failure on every attempt
        worker = subprocess.Popen([sys.executable, "-m", "cli", "worker"], cwd=root, env={**os.environ, **env},
                                  stdout=subprocess.DEVNULL, stderr=log, text=True)
        try:
            yield env
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=60)


def flowctl(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


def listed(env: dict[str, str], *args: str) -> list[dict[str, Any]]:
    done = flowctl(env, "list", "--json", *args)
    assert done.exit_code == 0, done.output
    runs: list[dict[str, Any]] = json.loads(done.output)["runs"]
    return runs


def test_a_stuck_run_in_run_wait_describe_and_list(served: dict[str, str]) -> None:
    workflow_id = f"cli-stuck-{uuid.uuid4().hex[:8]}"
    try:
        waited = subprocess.run([sys.executable, "-m", "cli", "run", "stuck:buggy", "--id", workflow_id, "--wait",
                                 "--stuck-timeout", "2"], env={**os.environ, **served}, capture_output=True,
                                text=True, timeout=120)
        assert waited.returncode == 1, waited.stderr
        warning = (f"warning: {workflow_id} is stuck: workflow task failed 1 time (attempt 2): bug: no order nil "
                   "at buggy.lua:4")
        assert waited.stderr.count(warning) == 1, waited.stderr
        assert "stuck: workflow task failed" in waited.stderr and f"hint: {workflow_id} is still open" in waited.stderr
        assert waited.stdout.startswith(f"started {workflow_id} ")

        described = flowctl(served, "describe", workflow_id)
        assert described.exit_code == 0, described.output
        assert f"{workflow_id}  running (stuck: workflow task failed" in described.output
        assert "  stuck:      bug: no order nil\n              at buggy.lua:4, workflow task" in described.output
        body = json.loads(flowctl(served, "describe", workflow_id, "--json").output)
        assert body["status"] == "running" and body["stuck"] is True
        assert body["task_failure"]["where"] == "buggy.lua:4" and body["task_failure"]["nondeterminism"] is False

        stuck = listed(served, "--status", "stuck", "--entry", "stuck:buggy")
        [run] = [r for r in stuck if r["workflow_id"] == workflow_id]
        assert run["status"] == "stuck" and run["entry_id"] == "stuck:buggy" and len(run["revision"]) == 64
        text = flowctl(served, "list", "--status", "stuck", "--entry", "stuck:buggy")
        assert f"{workflow_id} is stuck: workflow task failed" in text.output
        assert workflow_id not in {r["workflow_id"] for r in listed(served, "--status", "running")}
    finally:
        flowctl(served, "terminate", workflow_id)


def test_list_filters_by_entry_and_revision_and_explains_bad_input(served: dict[str, str]) -> None:
    workflow_id = f"cli-waiter-{uuid.uuid4().hex[:8]}"
    started = flowctl(served, "run", "stuck:waiter", "--id", workflow_id, "--json")
    assert started.exit_code == 0, started.output
    revision = json.loads(started.output)["revision"]
    try:
        deadline = time.monotonic() + 20
        while workflow_id not in {r["workflow_id"] for r in listed(served, "--entry", "stuck:waiter")}:
            assert time.monotonic() < deadline, "the run never showed up in visibility"
            time.sleep(0.2)
        [run] = [r for r in listed(served, "--entry", "stuck:waiter", "--revision", revision[:8])
                 if r["workflow_id"] == workflow_id]
        assert run["revision"] == revision and run["status"] == "running" and run["entry_id"] == "stuck:waiter"
        assert workflow_id not in {r["workflow_id"] for r in listed(served, "--entry", "stuck:buggy")}
        queried = listed(served, "--query", f"WorkflowId = '{workflow_id}'")
        assert [r["workflow_id"] for r in queried] == [workflow_id]

        unknown_revision = flowctl(served, "list", "--entry", "stuck:waiter", "--revision", "0000000")
        assert unknown_revision.exit_code == 1 and "stuck:waiter has no revision 0000000" in unknown_revision.output
        unknown_entry = flowctl(served, "list", "--entry", "stuck:nope")
        assert unknown_entry.exit_code == 1 and "stuck:nope" in unknown_entry.output
        bad_query = flowctl(served, "list", "--query", "WorkflowId = = ((")
        assert bad_query.exit_code == 1 and "Temporal refused the list query" in bad_query.output
        assert "Traceback" not in unknown_entry.output + bad_query.output + unknown_revision.output
    finally:
        flowctl(served, "terminate", workflow_id)

"""flowctl dev / worker / run / describe as a user runs them: real processes, the real dev server."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli import main
from runner.dev.server import free_port
from tests.support.paths import REPO


def flowctl(*args: str, cwd: Path, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=cwd, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the example project, as a user's checkout would have it."""
    shutil.copytree(REPO / "entries", tmp_path / "entries")
    return tmp_path


@pytest.mark.temporal  # starts its own server
def test_dev_demo_applies_serves_and_prints_the_demo_result(project: Path) -> None:
    done = flowctl("dev", "--demo", "--port", str(free_port()), "--ui-port", "0", cwd=project,
                   env={"PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    entry_count = sum(text.count("\n  - name: ") for text in
                      (p.read_text() for p in (project / "entries").glob("*.yaml")))
    assert f"applied {entry_count} entries" in done.stdout
    assert "demo: starting app:order_workflow" in done.stdout
    result = json.loads(done.stdout[done.stdout.index("{", done.stdout.index(" completed")):])
    assert result["status"] == "completed"
    assert result["payment_id"].startswith("pay-") and result["tracking"].startswith("TRK-")
    assert (project / ".flowctl" / "registry.db").is_file(), "the registry is kept under .flowctl/"
    assert (project / ".flowctl" / "temporal.db").is_file(), "the dev server keeps its state under .flowctl/"


def test_dev_refuses_an_invalid_tree_without_starting_anything(project: Path) -> None:
    (project / "entries" / "order_workflow.lua").write_text("local function main(\n")
    done = flowctl("dev", "--demo", "--port", str(free_port()), "--ui-port", "0", cwd=project,
                   env={"PYTHONPATH": str(REPO)})
    assert done.returncode == 1
    assert "order_workflow.lua:2" in done.stderr and "nothing was applied" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (project / ".flowctl" / "temporal.db").exists()


def test_worker_run_and_describe_against_a_real_server(project: Path, dev_server: Any) -> None:
    env = {"TEMPORAL_ADDRESS": dev_server.address, "FLOWCTL_REGISTRY": str(project / "registry.db"),
           "PYTHONPATH": str(REPO)}
    applied = flowctl("apply", cwd=project, env=env)
    assert applied.returncode == 0, applied.stderr
    metrics_port = free_port()
    worker = subprocess.Popen([sys.executable, "-m", "cli", "worker", "--metrics-port", str(metrics_port)], cwd=project,
                              env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        runner = CliRunner()
        ok = runner.invoke(main, ["run", "app:order_workflow", "--input",
                                  '{"id": "o-1", "total": 42, "ship_after": "200ms"}', "--wait", "--json",
                                  "--id", "cli-order-ok"], env=env, catch_exceptions=False)
        assert ok.exit_code == 0, ok.output
        body = json.loads(ok.output)
        assert body["status"] == "completed" and body["result"]["status"] == "completed"
        assert body["workflow_id"] == "cli-order-ok" and len(body["revision"]) == 64

        described = runner.invoke(main, ["describe", "cli-order-ok", "--json"], env=env)
        assert described.exit_code == 0, described.output
        info = json.loads(described.output)
        assert info["status"] == "completed" and info["revision"] == body["revision"]
        assert info["result"] == body["result"]

        missing = runner.invoke(main, ["run", "app:no_such_workflow"], env=env)
        assert missing.exit_code == 1 and "not in the registry" in missing.output

        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as response:
            metrics = response.read().decode()
        assert "flowctl_lua_task_cpu_seconds" in metrics, "flowctl's own Lua CPU metric is exported"
        assert 'entry="app:order_workflow"' in metrics
        assert "temporal_workflow_completed" in metrics, "the SDK's metrics are exported too"
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    assert "event=worker.started" in err and "event=worker.stopped" in err, "SIGTERM drains and stops cleanly"


def test_run_rejects_bad_input_with_a_hint(project: Path) -> None:
    runner = CliRunner()
    done = runner.invoke(main, ["run", "app:order_workflow", "--input", "{oops"],
                         env={"FLOWCTL_REGISTRY": str(project / "none.db")})
    assert done.exit_code == 1
    assert "--input is not valid JSON" in done.output and "hint:" in done.output

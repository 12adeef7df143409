"""flowctl run --name/--message, signal, query, update, cancel, terminate, and ProcessClient, on a real server."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli import main
from registry.open_store import open_store
from runner.client.process_client import ProcessClient
from runner.revision_source import StoreRevisionSource
from runner.sandbox.failures import FlowFailure
from tests.support.paths import REPO

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, dev_server: Any) -> Iterator[dict[str, str]]:
    """The control entries applied to a fresh registry and served by a real `flowctl worker` process."""
    root = tmp_path_factory.mktemp("control")
    shutil.copytree(HERE / "entries_control", root / "entries")
    env = {"TEMPORAL_ADDRESS": dev_server.address, "FLOWCTL_REGISTRY": str(root / "registry.db"),
           "PYTHONPATH": str(REPO)}
    applied = subprocess.run([sys.executable, "-m", "cli", "apply"], cwd=root, env={**os.environ, **env},
                             capture_output=True, text=True, timeout=60)
    assert applied.returncode == 0, applied.stderr
    worker = subprocess.Popen([sys.executable, "-m", "cli", "worker"], cwd=root, env={**os.environ, **env},
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        yield env
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=60)


def flowctl(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


def eventually(check: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def query_total(env: dict[str, str], workflow_id: str) -> int:
    done = flowctl(env, "query", workflow_id, "total")
    assert done.exit_code == 0, done.output
    return int(json.loads(done.output))


def test_start_messages_signals_query_update_and_finish(served: dict[str, str]) -> None:
    started = flowctl(served, "run", "ctl:counter", "--input", '{"initial": 1}', "--name", "cli-counter-1",
                      "--message", 'add={"amount": 5}')
    assert started.exit_code == 0, started.output
    assert flowctl(served, "signal", "cli-counter-1", "add", "--input", '{"amount": 10}').exit_code == 0

    def total_is_16() -> None:
        assert query_total(served, "cli-counter-1") == 16, "start message and signal are both counted"

    eventually(total_is_16)
    updated = flowctl(served, "update", "cli-counter-1", "set", "--input", "100")
    assert updated.exit_code == 0 and json.loads(updated.output) == 100
    rejected = flowctl(served, "update", "cli-counter-1", "set", "--input", "-5")
    assert rejected.exit_code == 1 and "set needs a number >= 0" in rejected.output
    missing = flowctl(served, "query", "cli-counter-1", "nope")
    assert missing.exit_code == 1 and "registered: total" in missing.output
    assert flowctl(served, "signal", "cli-counter-1", "finish").exit_code == 0

    def completed() -> dict[str, Any]:
        described = flowctl(served, "describe", "cli-counter-1", "--json")
        info: dict[str, Any] = json.loads(described.output)
        assert info["status"] == "completed", info
        return info

    assert eventually(completed)["result"] == {"total": 100}


def test_reusing_a_name_delivers_its_messages_to_the_running_workflow(served: dict[str, str]) -> None:
    first = flowctl(served, "run", "ctl:counter", "--input", '{"initial": 0}', "--name", "cli-counter-2",
                    "--message", 'add={"amount": 3}', "--json")
    second = flowctl(served, "run", "ctl:counter", "--input", '{"initial": 999}', "--name", "cli-counter-2",
                     "--message", 'add={"amount": 2}', "--json")
    assert first.exit_code == 0 and second.exit_code == 0, second.output
    assert json.loads(first.output)["run_id"] == json.loads(second.output)["run_id"], "the running one is reused"
    eventually(lambda: _assert_equal(query_total(served, "cli-counter-2"), 5))
    assert flowctl(served, "terminate", "cli-counter-2", "--reason", "test over").exit_code == 0
    described = json.loads(flowctl(served, "describe", "cli-counter-2", "--json").output)
    assert described["status"] == "terminated"


def test_cancel_lets_the_workflow_clean_up_and_ends_it_canceled(served: dict[str, str]) -> None:
    assert flowctl(served, "run", "ctl:counter", "--input", "{}", "--name", "cli-counter-3").exit_code == 0
    eventually(lambda: _assert_equal(query_total(served, "cli-counter-3"), 0))
    assert flowctl(served, "cancel", "cli-counter-3").exit_code == 0

    def canceled() -> dict[str, Any]:
        info: dict[str, Any] = json.loads(flowctl(served, "describe", "cli-counter-3", "--json").output)
        assert info["status"] == "canceled", info
        return info

    eventually(canceled)


def test_versions_lists_open_runs_by_revision_and_branch(served: dict[str, str]) -> None:
    assert flowctl(served, "run", "ctl:counter", "--input", "{}", "--name", "cli-counter-4").exit_code == 0
    eventually(lambda: _assert_equal(query_total(served, "cli-counter-4"), 0))
    listed = flowctl(served, "versions", "ctl:counter", "--json")
    assert listed.exit_code == 0, listed.output
    body = json.loads(listed.output)
    assert body["open_runs"] >= 1 and body["revisions"][body["current_revision"]] >= 1
    assert body["versions"]["count-v2"]["2"] >= 1
    text = flowctl(served, "versions", "ctl:counter")
    assert "(current)" in text.output and "workflow.version('count-v2'): v2:" in text.output
    assert flowctl(served, "terminate", "cli-counter-4").exit_code == 0


def test_control_commands_report_unknown_workflows(served: dict[str, str]) -> None:
    done = flowctl(served, "signal", "no-such-workflow-anywhere", "add")
    assert done.exit_code == 1 and "no running workflow" in done.output and "hint:" in done.output


def test_process_client_spawn_send_wait_and_failures(served: dict[str, str], dev_server: Any) -> None:
    async def scenario() -> tuple[Any, str]:
        with open_store(served["FLOWCTL_REGISTRY"], create=False) as store:
            procs = ProcessClient(await dev_server.connect(), StoreRevisionSource(store))
            pid = await procs.spawn("ctl:counter", {"initial": 1}, name="py-counter",
                                    messages=[("add", {"amount": 2})])
            await procs.send(pid, "add", {"amount": 3})
            await procs.send(pid, "finish")
            result = await procs.wait(pid)
            failed = await procs.spawn("ctl:counter", {"initial": 0}, name="py-counter-cancel")
            await procs.cancel(failed)
            try:
                await procs.wait(failed)
            except FlowFailure as failure:
                return result, failure.kind
            return result, "no failure"

    result, kind = asyncio.run(scenario())
    assert result == {"total": 6}
    assert kind == "CANCELED"


def _assert_equal(actual: Any, expected: Any) -> None:
    assert actual == expected

"""A worker process killed with SIGKILL mid-timer loses nothing: a new worker finishes the run, and
each completed activity ran exactly once (counted in the history and by the activity itself)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from registry.open_store import open_store
from runner.client.start import start_workflow
from runner.revision_source import StoreRevisionSource
from tests.support.paths import ENTRIES, REPO


def start_worker(project: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "cli", "worker", "--python-path", str(project / "entries")],
                            cwd=project, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def wait_for_line(path: Path, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} never reached {count} line(s)")


async def wait_for_timer(handle: Any, timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not any(e.HasField("timer_started_event_attributes") for e in (await handle.fetch_history()).events):
            await asyncio.sleep(0.05)


async def test_sigkill_mid_sleep_then_a_new_worker_completes_the_run(tmp_path: Path, dev_server: Any) -> None:
    project = tmp_path / "project"
    shutil.copytree(ENTRIES / "crash", project / "entries")
    queue = f"crash-{uuid.uuid4().hex[:8]}"
    yaml_file = project / "entries" / "app.yaml"
    yaml_file.write_text(yaml_file.read_text().replace("crash-queue", queue))
    log = tmp_path / "calls.log"
    env = {"TEMPORAL_ADDRESS": dev_server.address, "FLOWCTL_REGISTRY": str(project / "registry.db"),
           "CRASH_LOG": str(log), "PYTHONPATH": str(REPO)}
    applied = subprocess.run([sys.executable, "-m", "cli", "apply"], cwd=project, env={**os.environ, **env},
                             capture_output=True, text=True, timeout=60)
    assert applied.returncode == 0, applied.stderr

    first = start_worker(project, env)
    with open_store(env["FLOWCTL_REGISTRY"], create=False) as store:
        started = await start_workflow(await dev_server.client(), StoreRevisionSource(store), "crash:durable",
                                       {"sleep": "3s"})
    try:
        wait_for_line(log, 1)          # the first activity ran...
        # ...and the server has its completion: the run now sleeps on a durable timer
        await wait_for_timer(started.handle)
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL

    second = start_worker(project, env)
    try:
        result = await started.handle.result()
    finally:
        second.send_signal(signal.SIGTERM)
        second.communicate(timeout=60)
    assert result["first"].startswith("before recorded by pid ")
    assert result["second"].startswith("after recorded by pid ")
    # each activity ran in the serving process of its `flowctl worker` (a child of the supervisor)
    before, after = (int(result[key].rsplit(" ", 1)[1]) for key in ("first", "second"))
    assert before != after and first.pid not in (before, after) and second.pid not in (before, after)
    assert log.read_text().splitlines() == ["before", "after"], "each activity ran exactly once"

    history = await started.handle.fetch_history()
    scheduled = {e.event_id: e.activity_task_scheduled_event_attributes for e in history.events
                 if e.HasField("activity_task_scheduled_event_attributes")}
    completed = [scheduled[e.activity_task_completed_event_attributes.scheduled_event_id] for e in history.events
                 if e.HasField("activity_task_completed_event_attributes")]
    assert [a.activity_type.name for a in scheduled.values()] == ["crash:record", "crash:record"]
    assert [a.activity_type.name for a in completed] == ["crash:record", "crash:record"]
    assert not any(e.HasField("activity_task_failed_event_attributes") for e in history.events)
    assert not any(e.HasField("activity_task_timed_out_event_attributes") for e in history.events), \
        "no attempt died with the worker"
    assert any(e.HasField("timer_fired_event_attributes") for e in history.events)

"""A fleet: several ``flowctl worker`` processes on one PostgreSQL registry and one Temporal dev server.

- 3 workers, 200 runs; mid-way a new revision is applied (every worker picks it up, pushed, within
  2 s of the apply), one worker is SIGKILLed and one restarted; every run completes, the pinned ones
  on their own revision, each activity completed once;
- PostgreSQL stopped for 10 s while runs are in flight: no run fails, workers (on a read-only role)
  log the outage and the recovery.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle

from registry.open_store import open_store
from runner.client.start import start_workflow
from runner.revision_source import StoreRevisionSource
from tests.support.paths import REPO
from tests.support.postgres import PostgresServer

FLEET = REPO / "tests" / "runner" / "entries" / "fleet"


class WorkerProcess:
    """``flowctl worker`` as its own process; every stderr line kept with the time it arrived."""

    def __init__(self, project: Path, env: dict[str, str], registry: str) -> None:
        self.lines: list[tuple[float, str]] = []
        self.proc = subprocess.Popen([sys.executable, "-m", "cli", "worker", "--registry", registry,
                                      "--drain-timeout", "5"], cwd=project, env=env, text=True,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append((time.time(), line.rstrip()))

    def wait_for(self, event: str, *, after: float = 0.0, timeout: float = 60.0) -> float:
        """When this worker logged ``event=EVENT`` (after ``after``, epoch seconds)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, line in list(self.lines):
                if at >= after and f"event={event}" in line.split():
                    return at
            assert self.proc.poll() is None or event == "supervisor.stopped", self.log()
            time.sleep(0.02)
        raise AssertionError(f"no event={event} within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def stop(self, signum: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def project_on(tmp_path: Path, dev_server: Any) -> tuple[Path, dict[str, str]]:
    """The fleet entries on a queue of this test's own, and the environment of its processes."""
    project = tmp_path / "project"
    shutil.copytree(FLEET, project / "entries")
    yaml_file = project / "entries" / "app.yaml"
    yaml_file.write_text(yaml_file.read_text().replace("fleet-queue", f"fleet-{uuid.uuid4().hex[:8]}"))
    env = {**os.environ, "TEMPORAL_ADDRESS": dev_server.address, "PYTHONPATH": str(REPO)}
    env.pop("FLOWCTL_REGISTRY", None)
    return project, env


def apply(project: Path, env: dict[str, str], registry: str) -> None:
    done = subprocess.run([sys.executable, "-m", "cli", "apply", "--registry", registry], cwd=project, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


async def start_runs(client: Any, source: StoreRevisionSource, numbers: range,
                     sleep: str | None = None) -> list[WorkflowHandle[Any, Any]]:
    source.refresh(force=True)
    pause = {"sleep": sleep} if sleep else {}  # no key, not null: Lua's `if input.sleep` must be false
    started = await asyncio.gather(*(start_workflow(client, source, "fleet:job", {"n": n, **pause},
                                                    workflow_id=f"fleet-{uuid.uuid4().hex[:10]}-{n}")
                                     for n in numbers))
    return [s.handle for s in started]


async def activity_completions(handle: WorkflowHandle[Any, Any]) -> int:
    history = await handle.fetch_history()
    return sum(e.HasField("activity_task_completed_event_attributes") for e in history.events)


async def test_three_workers_two_hundred_runs_an_apply_a_kill_and_a_restart(
        tmp_path: Path, dev_server: Any, postgres_server: PostgresServer) -> None:
    project, env = project_on(tmp_path, dev_server)
    registry = postgres_server.new_database()
    apply(project, env, registry)
    workers = [WorkerProcess(project, env, registry) for _ in range(3)]
    try:
        for worker in workers:
            worker.wait_for("worker.started")
        client = await dev_server.client()
        with open_store(registry) as store:
            source = StoreRevisionSource(store)
            first = await start_runs(client, source, range(100), sleep="3s")  # in flight across what follows

            job = project / "entries" / "job.lua"
            job.write_text(job.read_text().replace('VERSION = "v1"', 'VERSION = "v2"'))
            asked = time.time()
            apply(project, env, registry)
            event = store.history(limit=1)[0]
            committed = datetime.datetime.fromisoformat(event.at.replace("Z", "+00:00")).timestamp()
            for worker in workers:  # pushed: each worker reloads within 2 s of the commit
                seen = worker.wait_for("registry.reloaded", after=asked)
                assert seen - committed < 2.0, (seen - committed, worker.log())

            workers[0].stop(signal.SIGKILL)  # the supervisor; its serving child dies with it
            workers[1].stop()
            workers[1] = WorkerProcess(project, env, registry)
            workers[1].wait_for("worker.started")
            second = await start_runs(client, source, range(100, 200))

            results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in first + second)), timeout=240)
            assert [r["n"] for r in results] == list(range(200))
            assert all(r["child"] == r["n"] for r in results)
            assert {r["version"] for r in results[:100]} == {"v1"}, "pinned runs stay on their revision"
            assert {r["version"] for r in results[100:]} == {"v2"}
            completions = await asyncio.gather(*(activity_completions(h) for h in first + second))
            assert completions == [1] * 200, "each activity completed exactly once"
    finally:
        for worker in workers:
            worker.stop()


async def test_postgres_down_for_ten_seconds_fails_no_run(tmp_path: Path, dev_server: Any,
                                                         postgres_server: PostgresServer) -> None:
    project, env = project_on(tmp_path, dev_server)
    registry = postgres_server.new_database()
    apply(project, env, registry)
    reader = f"reader_{uuid.uuid4().hex[:8]}"
    postgres_server.new_role(reader, read_only_of=registry)
    read_only = registry.replace(f"//{postgres_server.superuser}@", f"//{reader}@")
    workers = [WorkerProcess(project, env, read_only) for _ in range(2)]  # workers need only read access
    try:
        for worker in workers:
            worker.wait_for("worker.started")
        client = await dev_server.client()
        with open_store(registry) as store:
            handles = await start_runs(client, StoreRevisionSource(store), range(20), sleep="4s")
        await asyncio.sleep(0.5)
        stopped = time.time()
        postgres_server.stop()
        try:
            for worker in workers:
                worker.wait_for("registry.unavailable", after=stopped, timeout=30)
            await asyncio.sleep(10 - (time.time() - stopped))
        finally:
            postgres_server.start()
        for worker in workers:
            worker.wait_for("registry.recovered", after=stopped, timeout=60)
        results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), timeout=120)
        assert [r["n"] for r in results] == list(range(20))
        assert all(w.proc.poll() is None for w in workers), "the workers kept serving"
        for worker in workers:  # no workflow task waited on the database (the watchdog would have stepped in)
            assert "event=watchdog.stuck" not in worker.log() and "event=supervisor.child_exited" not in worker.log()
        with open_store(read_only) as store, open_store(registry) as admin:  # a read-only role reads, never writes
            assert store.current_digests() == admin.current_digests()
    finally:
        for worker in workers:
            worker.stop()

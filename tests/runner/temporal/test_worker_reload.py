"""A running ``flowctl worker`` follows the registry's worker entries: no restart for a new task queue.

Each test runs a REAL worker process on an SQLite registry and changes the entries with the
real ``flowctl apply``, as an operator would; the worker's stderr (logfmt) says what it did.
"""

from __future__ import annotations

import asyncio
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

from registry.open_store import open_store
from runner.client.start import start_workflow
from runner.revision_source import StoreRevisionSource
from tests.support.paths import REPO

GREET_LUA = """-- Greets through an activity served on the same task queue.
local function main(input)
    return funcs.call(input.activity, {name = input.name})
end

return { main = main }
"""

ACTIVITY_LUA = """local function main(input)
    return {greeting = "hello " .. input.name, queue = "%s"}
end
return {main = main}
"""


def entries_yaml(queue: str, *, worker: str = "a", client: str = "client", worker_extra: str = "",
                 client_address: str = "${env:TEMPORAL_ADDRESS:-localhost:7233}") -> str:
    """A worker entry on ``queue`` with one workflow and one activity on it (and the client, when given)."""
    client_entry = (f"  - name: {client}\n    kind: temporal.client\n    address: {client_address}\n"
                    if client else "")
    return f"""version: "1.0"
namespace: app
entries:
{client_entry}  - name: {worker}
    kind: temporal.worker
    client: app:client
    task_queue: {queue}
{worker_extra}  - name: greet_{worker}
    kind: workflow.lua
    source: file://greet.lua
    modules: [funcs]
    meta: {{temporal: {{workflow: {{worker: app:{worker}}}}}}}
  - name: hello_{worker}
    kind: function.lua
    source: file://hello_{worker}.lua
    meta: {{temporal: {{activity: {{worker: app:{worker}}}}}}}
"""


class Project:
    """A project directory, its SQLite registry, and the one worker process serving it."""

    def __init__(self, root: Path, address: str) -> None:
        self.root = root
        self.entries = root / "entries"
        self.entries.mkdir(parents=True)
        (self.entries / "greet.lua").write_text(GREET_LUA)
        self.env = {"TEMPORAL_ADDRESS": address, "FLOWCTL_REGISTRY": str(root / "registry.db"),
                    "PYTHONPATH": str(REPO)}
        self.log = root / "worker.log"
        self.worker: subprocess.Popen[str] | None = None

    def write(self, name: str, queue: str, **kwargs: Any) -> None:
        worker = kwargs.get("worker", "a")
        (self.entries / f"hello_{worker}.lua").write_text(ACTIVITY_LUA % queue)
        (self.entries / name).write_text(entries_yaml(queue, **kwargs))

    def apply(self, *args: str) -> None:
        done = subprocess.run([sys.executable, "-m", "cli", "apply", *args], cwd=self.root,
                              env={**os.environ, **self.env}, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr

    def start_worker(self, *args: str) -> None:
        with self.log.open("w") as log:
            self.worker = subprocess.Popen([sys.executable, "-m", "cli", "worker", "--drain-timeout", "5", *args],
                                           cwd=self.root, env={**os.environ, **self.env},
                                           stdout=subprocess.DEVNULL, stderr=log, text=True)

    def stop_worker(self) -> int:
        assert self.worker is not None
        if self.worker.poll() is None:
            self.worker.send_signal(signal.SIGTERM)
        return self.worker.wait(timeout=60)

    def lines(self, *needles: str) -> list[str]:
        """The worker's log lines that contain every needle."""
        text = self.log.read_text() if self.log.exists() else ""
        return [line for line in text.splitlines() if all(n in line for n in needles)]

    def wait_for(self, *needles: str, timeout: float = 30.0) -> str:
        """The first log line with every needle, once the worker wrote it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.lines(*needles)
            if found:
                return found[0]
            assert self.worker is not None and self.worker.poll() is None, self.log.read_text()
            time.sleep(0.05)
        raise AssertionError(f"the worker never logged {needles}:\n{self.log.read_text()}")

    async def run(self, client: Any, worker: str, name: str) -> Any:
        """Start app:greet_<worker> (it calls app:hello_<worker>) and wait for its result."""
        with open_store(self.env["FLOWCTL_REGISTRY"], create=False) as store:
            started = await start_workflow(client, StoreRevisionSource(store), f"app:greet_{worker}",
                                           {"activity": f"app:hello_{worker}", "name": name})
        async with asyncio.timeout(30):
            return await started.handle.result()


@pytest.fixture
def project(tmp_path: Path, dev_server: Any) -> Iterator[Project]:
    project = Project(tmp_path / "project", dev_server.address)
    yield project
    if project.worker is not None:
        assert project.stop_worker() == 0, project.log.read_text()
        assert project.lines("event=worker.stopped"), "SIGTERM still drains and stops cleanly"
        assert "Traceback" not in project.log.read_text()


def queue_name(label: str) -> str:
    return f"reload-{label}-{uuid.uuid4().hex[:8]}"


async def test_a_new_worker_entry_is_served_without_a_restart_and_a_pruned_one_drains(
        project: Project, dev_server: Any) -> None:
    client = await dev_server.client()
    qa, qb = queue_name("a"), queue_name("b")
    project.write("a.yaml", qa)
    project.apply()
    project.start_worker()
    project.wait_for("event=worker.started", f"task_queue={qa}")
    pid = project.worker.pid if project.worker else None

    project.write("b.yaml", qb, worker="b", client="")
    project.apply()
    started = project.wait_for("event=worker.started", f"task_queue={qb}")
    assert 'reason="new entry app:b"' in started and "workers=app:b" in started
    assert await project.run(client, "b", "bee") == {"greeting": "hello bee", "queue": qb}
    assert project.worker is not None and project.worker.poll() is None and project.worker.pid == pid
    assert len(project.lines("event=worker.started", f"task_queue={qa}")) == 1, "the first queue never restarted"

    (project.entries / "b.yaml").unlink()
    project.apply("--prune")
    draining = project.wait_for("event=worker.draining", f"task_queue={qb}")
    assert 'reason="app:b was removed from the registry"' in draining
    project.wait_for("event=worker.stopped", f"task_queue={qb}")
    assert await project.run(client, "a", "ay") == {"greeting": "hello ay", "queue": qa}, \
        "the other task queue keeps serving"


async def test_changed_options_restart_a_worker_and_a_changed_client_address_asks_for_a_restart(
        project: Project, dev_server: Any) -> None:
    client = await dev_server.client()
    qa = queue_name("opts")
    project.write("a.yaml", qa)
    project.apply()
    project.start_worker()
    project.wait_for("event=worker.started", f"task_queue={qa}")

    project.write("a.yaml", qa, worker_extra="    worker_options: {max_cached_workflows: 10}\n")
    project.apply()
    restarted = project.wait_for("event=worker.restarted", f"task_queue={qa}")
    assert 'reason="worker_options defaults -> max_cached_workflows=10"' in restarted
    assert await project.run(client, "a", "opts") == {"greeting": "hello opts", "queue": qa}

    project.write("a.yaml", qa, worker_extra="    worker_options: {max_cached_workflows: 10}\n",
                  client_address="temporal.elsewhere.internal:7233")
    project.apply()
    warning = project.wait_for("event=client.changed")
    assert "level=warning" in warning and "client=app:client" in warning and "fields=address" in warning
    assert "restart the worker to use the new settings" in warning
    assert await project.run(client, "a", "still") == {"greeting": "hello still", "queue": qa}, \
        "the open connection keeps serving"
    assert len(project.lines("event=client.changed")) == 1


async def test_named_workers_ignore_other_entries_and_drain_a_removed_one_with_a_warning(
        project: Project, dev_server: Any) -> None:
    client = await dev_server.client()
    qa, qb, qc = queue_name("a"), queue_name("b"), queue_name("c")
    project.write("a.yaml", qa)
    project.write("b.yaml", qb, worker="b", client="")
    project.apply()
    project.start_worker("--worker", "app:a", "--worker", "app:b")
    project.wait_for("event=worker.started", f"task_queue={qb}")

    (project.entries / "b.yaml").unlink()
    project.write("c.yaml", qc, worker="c", client="")
    project.apply("--prune")
    missing = project.wait_for("event=worker.missing")
    assert "level=warning" in missing and "worker=app:b" in missing
    project.wait_for("event=worker.stopped", f"task_queue={qb}")
    assert await project.run(client, "a", "named") == {"greeting": "hello named", "queue": qa}
    assert project.stop_worker() == 0
    assert qc not in project.log.read_text(), "app:c is not one of the named workers"

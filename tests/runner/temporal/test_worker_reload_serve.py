"""serve() reconciling in process, on the real dev server: what goes wrong in a reload stays contained.

A worker that cannot start (its client's namespace does not exist) is logged and the rest of
the same apply still starts; an invalid worker set is refused while the current one keeps serving.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest

from runner.client.start import start_workflow
from runner.revision_source import ProjectRevisionSource
from runner.temporal.worker import serve

PROJECT = """version: "1.0"
namespace: app
entries:
  - name: client
    kind: temporal.client
    address: {address}
  - name: a
    kind: temporal.worker
    client: app:client
    task_queue: {qa}
  - name: greet_a
    kind: workflow.lua
    source: file://greet.lua
    meta: {{temporal: {{workflow: {{worker: app:a}}}}}}
"""

LATER = """version: "1.0"
namespace: app
entries:
  - name: nowhere
    kind: temporal.client
    address: {address}
    namespace: no-such-namespace-{suffix}
  - name: b
    kind: temporal.worker
    client: app:nowhere
    task_queue: {qb}
  - name: c
    kind: temporal.worker
    client: app:client
    task_queue: {qc}
  - name: greet_c
    kind: workflow.lua
    source: file://greet.lua
    meta: {{temporal: {{workflow: {{worker: app:c}}}}}}
"""

CONFLICT = """version: "1.0"
namespace: app
entries:
  - name: d
    kind: temporal.worker
    client: app:client
    task_queue: {qa}
    versioning: auto_upgrade
"""


class Log:
    """What the worker logged so far (log_event writes to stderr)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.text = ""

    async def wait_for(self, *needles: str, timeout: float = 30.0) -> str:
        async with asyncio.timeout(timeout):
            while True:
                self.text += self.capsys.readouterr().err
                found = [line for line in self.text.splitlines() if all(n in line for n in needles)]
                if found:
                    return found[0]
                await asyncio.sleep(0.05)


async def test_a_worker_that_cannot_start_and_an_invalid_set_leave_the_others_serving(
        tmp_path: Path, dev_server: Any, capsys: pytest.CaptureFixture[str]) -> None:
    suffix = uuid.uuid4().hex[:8]
    qa, qb, qc = (f"reload-{name}-{suffix}" for name in "abc")
    (tmp_path / "greet.lua").write_text('local function main(input) return {hello = input.name} end\n'
                                        'return { main = main }\n')
    (tmp_path / "a.yaml").write_text(PROJECT.format(address=dev_server.address, qa=qa))
    source = ProjectRevisionSource.from_paths([tmp_path / "a.yaml"])
    client = await dev_server.client()
    stop, ready = asyncio.Event(), asyncio.Event()
    served = asyncio.create_task(serve(source, stop=stop, clients={"app:client": client}, ready=ready))
    log = Log(capsys)
    try:
        async with asyncio.timeout(30):
            await ready.wait()

        (tmp_path / "later.yaml").write_text(LATER.format(address=dev_server.address, qb=qb, qc=qc, suffix=suffix))
        for rev in ProjectRevisionSource.from_paths([tmp_path / "a.yaml", tmp_path / "later.yaml"]).entries():
            if rev.entry_id.endswith(("nowhere", ":b", ":c", "greet_c")):
                source.add(rev)
        await log.wait_for("event=client.connected", "client=app:nowhere")  # a client not connected yet
        failed = await log.wait_for("event=worker.failed", f"task_queue={qb}")
        assert "level=error" in failed and "no-such-namespace" in failed
        assert "Stack backtrace" not in log.text
        await log.wait_for("event=worker.started", f"task_queue={qc}")
        started = await start_workflow(client, source, "app:greet_c", {"name": "c"})
        assert await started.handle.result() == {"hello": "c"}

        (tmp_path / "conflict.yaml").write_text(CONFLICT.format(qa=qa))
        (conflict,) = [rev for rev in ProjectRevisionSource.from_paths(
            [tmp_path / "a.yaml", tmp_path / "conflict.yaml"]).entries() if rev.entry_id == "app:d"]
        source.add(conflict)
        refused = await log.wait_for("event=worker.reload_refused")
        assert "level=error" in refused and "different versioning" in refused
        started = await start_workflow(client, source, "app:greet_a", {"name": "a"})
        assert await started.handle.result() == {"hello": "a"}, "the current set keeps serving"
        assert served.done() is False
    finally:
        stop.set()
        await served
    log.text += capsys.readouterr().err
    assert log.text.count(f"event=worker.started task_queue={qa}") == 1, "nothing restarted the first queue"
    assert "event=worker.stopped" in log.text

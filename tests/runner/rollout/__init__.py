"""Tests of ``runner/rollout/``: the replay gate (test_gate*.py) and ``flowctl upgrade`` (test_upgrade*.py).

The gate's tests share one project, ``entries/`` (workflows that record a command, then wait for
"ship"), and the changes an operator might apply to it, ``changes/``. :func:`gate_project` copies
it under a namespace of its own, so each test's workflow types (and so the runs the gate lists)
are its own on the session's shared dev server.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

HERE = Path(__file__).resolve().parent
#: the gate's test project (namespace ``gate``)
GATE_ENTRIES = HERE / "entries"
#: changes to it, each a replacement for one of its Lua files
CHANGES = HERE / "changes"

_GATE_REF = re.compile(r"\bgate(?=[:-])|(?<=namespace: )gate\b")


def gate_project(root: Path, namespace: str | None = None) -> tuple[Path, str]:
    """Copy the project to ``root/entries`` under ``namespace`` (default: a fresh one); its path and namespace."""
    namespace = namespace or f"g{uuid.uuid4().hex[:10]}"
    entries = root / "entries"
    shutil.copytree(GATE_ENTRIES, entries)
    for path in entries.iterdir():
        path.write_text(_GATE_REF.sub(namespace, path.read_text(encoding="utf-8")), encoding="utf-8")
    return entries, namespace


def apply_change(entries: Path, change: str, target: str) -> None:
    """Write ``changes/<change>.lua`` over ``entries/<target>.lua`` (in the project's namespace)."""
    _write(entries, target, CHANGES / f"{change}.lua")


def restore(entries: Path, target: str) -> None:
    """Put ``entries/<target>.lua`` back as the project has it."""
    _write(entries, target, GATE_ENTRIES / f"{target}.lua")


def _write(entries: Path, target: str, source: Path) -> None:
    namespace = re.search(r"^namespace: (\w+)", (entries / "app.yaml").read_text(encoding="utf-8"), re.M)
    assert namespace is not None
    text = _GATE_REF.sub(namespace.group(1), source.read_text(encoding="utf-8"))
    (entries / f"{target}.lua").write_text(text, encoding="utf-8")


async def waiting(handle: WorkflowHandle[Any, Any], attributes: str, timeout: float = 30.0) -> None:
    """Until the run recorded an event with ``attributes`` and then waits (no workflow task pending)."""
    busy = {EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
            EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED}
    async with asyncio.timeout(timeout):
        while True:
            events = (await handle.fetch_history()).events
            if any(e.HasField(attributes) for e in events) and events[-1].event_type not in busy:  # type: ignore[arg-type]
                return
            await asyncio.sleep(0.1)


async def listed(client: Client, workflow_type: str, run_ids: set[str], timeout: float = 30.0) -> None:
    """Until visibility lists every run in ``run_ids`` (the gate finds runs through it)."""
    async with asyncio.timeout(timeout):
        while True:
            found = {e.run_id async for e in client.list_workflows(f"WorkflowType = '{workflow_type}'")}
            if run_ids <= found:
                return
            await asyncio.sleep(0.1)

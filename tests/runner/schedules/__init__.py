"""Tests of ``runner/schedules/``: temporal.schedule entries reconciled with the cluster, and operated.

:func:`schedule_project` writes a small project (a client, a worker, the workflow ``report`` and the
schedule ``tick``) under a namespace of its own, so each test's schedules, task queue and workflow
types are its own on the session's shared dev server (apply --prune only ever touches schedules of
the tree's namespaces).
"""

from __future__ import annotations

import uuid
from pathlib import Path

PROJECT = """\
version: "1.0"
namespace: {ns}
entries:
  - name: client
    kind: temporal.client
    address: ${{env:TEMPORAL_ADDRESS:-localhost:7233}}
  - name: worker
    kind: temporal.worker
    client: client
    task_queue: {ns}-queue
  - name: report
    kind: workflow.lua
    source: file://report.lua
    input_schema: {{type: object, required: [n]}}
    options: {{temporal.workflow.execution_timeout: 1h}}
    meta: {{temporal: {{workflow: {{worker: worker}}}}}}
"""
#: the schedule of most tests: every 2 s, the dev server runs it in real time
TICK = """\
  - name: tick
    kind: temporal.schedule
    workflow: report
    input: {n: 1}
    interval: {every: 2s}
"""
REPORT_LUA = "return {main = function(input) return {n = input.n} end}\n"


def schedule_project(root: Path, schedules: str = TICK, namespace: str | None = None) -> tuple[Path, str]:
    """Write the project with ``schedules`` (entry YAML) to ``root/entries``; its path and namespace."""
    namespace = namespace or f"s{uuid.uuid4().hex[:10]}"
    entries = root / "entries"
    entries.mkdir(parents=True, exist_ok=True)
    (entries / "report.lua").write_text(REPORT_LUA, encoding="utf-8")
    set_schedules(entries, namespace, schedules)
    return entries, namespace


def set_schedules(entries: Path, namespace: str, schedules: str) -> None:
    """Rewrite the project's schedule entries (the rest stays as it is)."""
    (entries / "app.yaml").write_text(PROJECT.format(ns=namespace) + schedules, encoding="utf-8")

"""What the runner commands print: run, describe, versions, replay, signal|query|update|cancel|terminate, dev.

Like ``registry.render``: each function returns :class:`~registry.render.Output` pieces that
``cli.py`` prints in order, JSON bodies being the results' ``to_dict()``; the ``dev_*`` and
``demo_*`` functions return the lines ``flowctl dev`` prints as it goes. Importing this module
loads no temporalio: the result types are only named for the type checker.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.render import Output, json_text, lines

if TYPE_CHECKING:
    from runner.client.control import ControlResult
    from runner.client.executions import Described, RunOutcome
    from runner.client.open_versions import OpenVersions
    from runner.replay import ReplayReport

__all__ = ["controlled", "demo_finished", "demo_started", "described", "dev_applied", "dev_server", "replayed",
           "started", "versions"]

#: How each replay verdict is labelled in the text report.
_REPLAY_LABELS = {"ok": "OK", "diverged": "DIVERGED", "error": "ERROR"}


def started(outcome: RunOutcome, *, as_json: bool) -> list[Output]:
    """``flowctl run``: the started run, and with ``--wait`` its result (stdout) or failure (stderr)."""
    if as_json:
        return [json_text(outcome.to_dict())]
    out = [lines(f"started {outcome.workflow_id} (run {outcome.run_id}) on {outcome.task_queue}, "
                 f"revision {outcome.revision[:12]}")]
    if outcome.waited and outcome.ok:
        out.append(json_text(outcome.result))
    elif outcome.waited and outcome.failure is not None:
        where = f" at {outcome.failure.where}" if outcome.failure.where else ""
        out.append(lines(f"failed: {outcome.failure.kind}: {outcome.failure.message}{where}", err=True, color="red"))
    return out


def described(found: Described, *, as_json: bool) -> list[Output]:
    """``flowctl describe``: status, type, run, revision, history length, pending activities, outcome."""
    if as_json:
        return [json_text(found.to_dict(), default=str)]
    out = [f"{found.workflow_id}  {found.status}", f"  type:       {found.workflow_type} on {found.task_queue}",
           f"  run:        {found.run_id}", f"  revision:   {found.revision or '(not started by flowctl)'}",
           f"  started:    {found.start_time}" + (f", closed {found.close_time}" if found.close_time else ""),
           f"  history:    {found.history_length} events"]
    for pending in found.pending_activities:
        failure = f", last failure: {pending['last_failure']}" if pending["last_failure"] else ""
        out.append(f"  pending:    {pending['activity_type']} attempt {pending['attempt']} "
                   f"({pending['state']}{failure})")
    if found.result is not None:
        out.append("  result:     " + json.dumps(found.result, ensure_ascii=False))
    if found.failure is not None:
        out.append(f"  failure:    {found.failure['kind']}: {found.failure['message']}")
    return [lines(*out)]


def versions(found: OpenVersions, *, as_json: bool) -> list[Output]:
    """``flowctl versions``: open runs by revision, and by recorded version per ``workflow.version`` change id."""
    if as_json:
        return [json_text(found.to_dict(), ascii_only=True)]
    more = " (the first ones only)" if found.truncated else ""
    out = [f"{found.entry_id} (type {found.workflow_type}): {found.runs} open run(s){more}"]
    for digest, count in found.revisions.most_common():
        out.append(f"  revision {digest[:12]}{' (current)' if digest == found.current_revision else ''}: {count}")
    for change, counts in sorted(found.versions.items()):
        shown = ", ".join(f"v{version}: {count}" for version, count in sorted(counts.items()))
        untouched = found.runs - sum(counts.values())
        rest = f", no marker (took min): {untouched}" if untouched else ""
        out.append(f"  workflow.version({change!r}): {shown}{rest}")
    return [lines(*out)]


def replayed(report: ReplayReport, *, as_json: bool) -> list[Output]:
    """``flowctl replay``: one verdict per history (where a diverging one differs), then a summary."""
    if as_json:
        return [json_text(report.to_dict())]
    out = []
    for result in report.results:
        kind = f" ({result.workflow_type}, {result.events} events)" if result.workflow_type else ""
        out.append(lines(f"{_REPLAY_LABELS[result.status]:<8} {result.name}{kind}", color=None if result.ok else "red"))
        if not result.ok:
            out.append(lines(f"         {result.message}", *([f"         at {result.where}"] if result.where else [])))
    bad = sum(1 for result in report.results if not result.ok)
    out.append(lines(f"{len(report.results) - bad} replayed OK, {bad} failed" if bad
                     else f"{len(report.results)} replayed OK"))
    if report.diverged:
        out.append(lines("hint: guard the change with workflow.version(change_id, min, max) so running workflows "
                         "keep their old path (docs/testing.md)", err=True))
    return out


def controlled(result: ControlResult, *, as_json: bool) -> list[Output]:
    """``flowctl signal|query|update|cancel|terminate``: a query's or update's value, else ``ok``."""
    if result.returns_value:
        return [json_text(result.value, indent=None if as_json else 2)]
    if as_json:
        return [json_text(result.to_dict(), indent=None, ascii_only=True)]
    return [lines(f"{result.action} {result.workflow_id}{' ' + result.name if result.name else ''}: ok")]


def dev_applied(entries: int, changed: int, registry_url: str) -> str:
    """``flowctl dev``, after applying the tree."""
    return f"applied {entries} entries to {registry_url} ({changed} created or changed)"


def dev_server(address: str, ui_url: str | None, state_dir: Path) -> str:
    """``flowctl dev``, once the Temporal dev server is up."""
    ui = f", web UI {ui_url}" if ui_url else ""
    return f"Temporal dev server on {address}{ui} (state in {state_dir}/)"


def demo_started(entry_id: str, value: Any, *, has_input: bool) -> str:
    """``flowctl dev``, starting a demo run with input ``value`` (``has_input`` False: it takes none)."""
    return f"demo: starting {entry_id}" + (" " + json.dumps(value) if has_input else "")


def demo_finished(outcome: RunOutcome) -> list[str]:
    """``flowctl dev``, after a demo run: whether it completed, then its result or error as JSON."""
    return [f"demo: {outcome.workflow_id} {('completed' if outcome.ok else 'failed')}",
            json.dumps(outcome.to_dict().get("result" if outcome.ok else "error"), indent=2)]

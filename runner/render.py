"""What the runner commands print: run, describe, list, versions, replay, upgrade, signal|query|update|cancel|
terminate, schedule, dev.

Like ``registry.render``: each function returns :class:`~registry.render.Output` pieces that
``cli.py`` prints in order, JSON bodies being the results' ``to_dict()``; the ``dev_*`` and
``demo_*`` functions return the lines ``flowctl dev`` prints as it goes. Importing this module
loads no temporalio: the result types are only named for the type checker.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.render import Output, json_text, lines, schedule_report
from runner.schedules.results import ScheduleOperation

if TYPE_CHECKING:
    from registry.schedules import ScheduleReport
    from runner.client.async_activities import ActivityDone
    from runner.client.control import ControlResult
    from runner.client.executions import Described, RunOutcome, TaskFailure
    from runner.client.listing import RunList
    from runner.client.open_versions import OpenVersions
    from runner.project.init import InitResult
    from runner.project.stubs import StubsWritten
    from runner.replay import ReplayReport
    from runner.rollout.upgrade import UpgradeResult
    from runner.schedules.results import ScheduleDetails, ScheduleList

__all__ = ["controlled", "demo_finished", "demo_started", "described", "dev_applied", "dev_schedules", "dev_server",
           "initialized", "replayed", "run_list", "schedule_list", "schedule_result", "started", "stubs_written",
           "stuck_warning", "upgraded", "versions"]

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
    elif outcome.waited and outcome.stuck is not None:
        out.append(lines(f"stuck: {_stuck_text(outcome.stuck)}", err=True, color="red"))
        out.append(lines(f"hint: {outcome.workflow_id} is still open: {_stuck_hint(outcome.workflow_id)}", err=True))
    return out


def stuck_warning(workflow_id: str, failure: TaskFailure) -> list[Output]:
    """``flowctl run --wait``, while the run's workflow task keeps failing (stderr)."""
    return [lines(f"warning: {workflow_id} is stuck: {_stuck_text(failure)}", err=True, color="yellow")]


def _stuck_hint(workflow_id: str) -> str:
    """What to do about a stuck run."""
    return (f"fix the workflow and apply it (a pinned run then needs `flowctl upgrade {workflow_id}`), "
            f"or `flowctl terminate {workflow_id}`")


def _stuck_text(failure: TaskFailure) -> str:
    """One line: how often the workflow task failed, why, and where in the Lua."""
    kind = "nondeterminism: " if failure.nondeterminism else ""
    where = f" at {failure.where}" if failure.where else ""
    failed = f"workflow task failed {_times(failure.failures)} (attempt {failure.attempt})"
    return f"{failed}: {kind}{failure.message}{where}"


def _times(n: int) -> str:
    return "1 time" if n == 1 else f"{n} times"


def described(found: Described, *, as_json: bool) -> list[Output]:
    """``flowctl describe``: status (stuck or not), type, run, revision, history length, pending activities, outcome."""
    if as_json:
        return [json_text(found.to_dict(), default=str)]
    stuck = found.task_failure
    status = found.status + (f" (stuck: workflow task failed {_times(stuck.failures)})" if stuck else "")
    moved = f" (moved by `flowctl upgrade` from {found.upgraded_from[:12]})" if found.upgraded_from else ""
    out = [f"{found.workflow_id}  {status}", f"  type:       {found.workflow_type} on {found.task_queue}",
           f"  run:        {found.run_id}", f"  revision:   {found.revision or '(not started by flowctl)'}{moved}",
           f"  started:    {found.start_time}" + (f", closed {found.close_time}" if found.close_time else ""),
           f"  history:    {found.history_length} events"]
    if stuck is not None:
        out.append(f"  stuck:      {'nondeterminism: ' if stuck.nondeterminism else ''}{stuck.message}")
        out.append(f"              {'at ' + stuck.where + ', ' if stuck.where else ''}workflow task attempt "
                   f"{stuck.attempt}, first failed {stuck.failed_at or '(not recorded)'}")
        out.extend(f"              {line.strip()}" for line in stuck.traceback.splitlines() if line.strip())
        out.append(f"  hint:       {_stuck_hint(found.workflow_id)}")
    out.extend(f"  quarantined: {record['message']}" for record in found.quarantined)
    for pending in found.pending_activities:
        failure = f", last failure: {pending['last_failure']}" if pending["last_failure"] else ""
        named = f"activity id {pending['activity_id']}, " if pending.get("activity_id") else ""
        out.append(f"  pending:    {pending['activity_type']} attempt {pending['attempt']} "
                   f"({named}{pending['state']}{failure})")
    if found.result is not None:
        out.append("  result:     " + json.dumps(found.result, ensure_ascii=False))
    if found.failure is not None:
        out.append(f"  failure:    {found.failure['kind']}: {found.failure['message']}")
    return [lines(*out)]


def run_list(found: RunList, *, as_json: bool) -> list[Output]:
    """``flowctl list``: one line per run (workflow ID, run ID, entry, revision, status, start), newest first."""
    if as_json:
        return [json_text(found.to_dict(), ascii_only=True)]
    stopped = "(stopped after --limit runs: raise it, or narrow with --entry, --status or --query)"
    more = [stopped] if found.truncated else []
    if not found.runs:
        return [lines(f"no runs match{' ' + repr(found.query) if found.query else ''}"
                      f"{' among the runs examined' if found.truncated else ''}", *more)]
    rows = [("WORKFLOW ID", "RUN ID", "ENTRY", "REVISION", "STATUS", "STARTED")]
    for run in found.runs:
        revision = (run.revision[:12] + ("*" if run.upgraded else "")) if run.revision else "-"
        rows.append((run.workflow_id, run.run_id, run.entry_id or run.workflow_type, revision, run.status,
                     run.start_time or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    out = ["  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]])
           for row in rows]
    out.extend(f"{run.workflow_id} is stuck: {_stuck_text(run.task_failure)}"
               for run in found.runs if run.task_failure is not None)
    if any(run.upgraded for run in found.runs):
        out.append("* moved there by `flowctl upgrade`")
    return [lines(*out, *more)]


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
        if result.message:  # why it failed; for an OK one, a note (its task fails as the history's did)
            note = "" if not result.ok else "note: "
            out.append(lines(f"         {note}{result.message}",
                             *([f"         at {result.where}"] if result.where else [])))
    bad = sum(1 for result in report.results if not result.ok)
    out.append(lines(f"{len(report.results) - bad} replayed OK, {bad} failed" if bad
                     else f"{len(report.results)} replayed OK"))
    if report.diverged:
        out.append(lines("hint: guard the change with workflow.version(change_id, min, max) so running workflows "
                         "keep their old path (docs/testing.md)", err=True))
    return out


def upgraded(result: UpgradeResult, *, as_json: bool) -> list[Output]:
    """``flowctl upgrade``: the runs moved (or that would move), or why the upgrade was refused."""
    if as_json:
        return [json_text(result.to_dict())]
    target = result.target[:12]
    if not result.ok:
        bad = len(result.runs) - result.count("held", "already")
        out = [lines(f"refused: {bad} of {len(result.runs)} run(s) of {result.entry_id} do not replay on revision "
                     f"{target}; nothing recorded", err=True, color="red")]
        for run in result.runs:
            label = {"held": "ok", "already": "at target"}.get(run.status, run.status.upper())
            out.append(lines(f"  {label:<9} {run.workflow_id} (run {run.run_id})", err=True))
            if run.message:
                out.append(lines(f"            {run.message}", *([f"            at {run.where}"] if run.where else []),
                                 err=True))
        out.append(lines("hint: make the new code issue the recorded commands for these runs (guard the change with "
                         "workflow.version(change_id, min, max)), or leave them on their revision "
                         "(docs/changing-workflows.md)", err=True))
        return out
    moving = result.count("moved", "would_move")
    if result.dry_run:
        head = f"{result.entry_id}: {moving} run(s) would move to revision {target} (dry run: nothing recorded)"
    elif moving:
        head = (f"{result.entry_id}: moved {moving} run(s) to revision {target} (registry event #{result.event_id}); "
                "each takes it on its next workflow task")
    else:
        head = f"{result.entry_id}: nothing to move, every run already executes revision {target}"
    body = [head]
    for run in result.runs:
        if run.status == "already":
            body.append(f"  {run.workflow_id} (run {run.run_id}) already executes {target}")
        else:
            body.append(f"  {run.workflow_id} (run {run.run_id}) {(run.from_digest or '-')[:12]} -> {target} "
                        f"(replayed {run.events} events)")
    return [lines(*body)]


def controlled(result: ControlResult, *, as_json: bool) -> list[Output]:
    """``flowctl signal|query|update|cancel|terminate``: a query's or update's value, else ``ok``."""
    if result.returns_value:
        return [json_text(result.value, indent=None if as_json else 2)]
    if as_json:
        return [json_text(result.to_dict(), indent=None, ascii_only=True)]
    return [lines(f"{result.action} {result.workflow_id}{' ' + result.name if result.name else ''}: ok")]


def activity_done(result: ActivityDone, *, as_json: bool) -> list[Output]:
    """``flowctl activity complete|fail|heartbeat``: ``ok`` (never the token)."""
    if as_json:
        return [json_text(result.to_dict(), indent=None, ascii_only=True)]
    return [lines(f"activity {result.action} ({result.activity}): ok")]


def dev_applied(entries: int, changed: int, registry_url: str) -> str:
    """``flowctl dev``, after applying the tree."""
    return f"applied {entries} entries to {registry_url} ({changed} created or changed)"


def dev_schedules(report: ScheduleReport) -> list[str]:
    """``flowctl dev``, after reconciling the schedules with the local server: one line per schedule."""
    return [line for out in schedule_report(report) for line in out.text.splitlines()]


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


def schedule_list(found: ScheduleList, *, as_json: bool) -> list[Output]:
    """``flowctl schedule list``: one line per schedule (ID, entry, revision applied, state, next run, workflow)."""
    if as_json:
        return [json_text(found.to_dict(), ascii_only=True)]
    if not found.schedules:
        return [lines("no schedules (temporal.schedule entries get theirs with `flowctl apply`)")]
    rows = [("SCHEDULE", "ENTRY", "REVISION", "STATE", "NEXT", "WORKFLOW")]
    for s in found.schedules:
        state = "missing" if s.missing else "orphaned" if s.orphaned else "paused" if s.paused else "active"
        revision = (s.applied_revision or "-")[:12] + ("*" if s.behind and not s.missing and not s.orphaned else "")
        rows.append((s.schedule_id, s.entry_id or "-", revision, state, s.next_time or "-", s.workflow_type or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    out = ["  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]])
           for row in rows]
    if any(s.missing for s in found.schedules):
        out.append("missing: the registry has the entry, the cluster no schedule: run `flowctl apply`")
    if any(s.orphaned for s in found.schedules):
        out.append("orphaned: flowctl created it for an entry the registry no longer has: `flowctl apply --prune` "
                   "with a schedule entry in the tree deletes it, or `temporal schedule delete`")
    if any(s.behind and not s.missing and not s.orphaned for s in found.schedules):
        out.append("* applied from another revision than the registry's current one: run `flowctl apply`")
    return [lines(*out)]


def schedule_result(done: ScheduleDetails | ScheduleOperation, *, as_json: bool) -> list[Output]:
    """``flowctl schedule describe|trigger|pause|unpause|backfill``: the description, or what was done."""
    if isinstance(done, ScheduleOperation):
        return _schedule_operated(done, as_json=as_json)
    return _schedule_described(done, as_json=as_json)


def _schedule_described(found: ScheduleDetails, *, as_json: bool) -> list[Output]:
    """``flowctl schedule describe``: state, what it starts, when, its policies, next times and recent runs."""
    if as_json:
        return [json_text(found.to_dict(), default=str)]
    state = f"paused ({found.note})" if found.paused else "active" + (f" ({found.note})" if found.note else "")
    current = ("" if found.current_revision is None else " (the registry's current)"
               if found.applied_revision == found.current_revision else
               f" (the registry has {found.current_revision[:12]}: run `flowctl apply`)")
    out = [f"{found.schedule_id}  {state}",
           f"  entry:      {found.entry_id or '(not created by flowctl)'}"
           + (f", applied from revision {found.applied_revision[:12]}{current}" if found.applied_revision else ""),
           f"  starts:     {found.workflow_type} on {found.task_queue}, workflow ID {found.workflow_id}-<time>",
           *(f"  {'spec:' if i == 0 else '':<11} {line}" for i, line in enumerate(found.spec or ("(no times)",))),
           f"  policy:     overlap {found.overlap}"
           + (f", catch-up window {found.catchup_window}" if found.catchup_window else "")
           + (", pauses when a run fails" if found.pause_on_failure else ""),
           f"  actions:    {found.actions} taken, {found.skipped_overlap} skipped (overlap), {found.missed_catchup} "
           "missed (catch-up window)"]
    out += [f"  {'next:' if i == 0 else '':<11} {time}" for i, time in enumerate(found.next_times)]
    for i, run in enumerate(found.recent):
        outcome = (f": {json.dumps(run.result, ensure_ascii=False)}" if run.status == "completed"
                   else f": {run.failure}" if run.failure else "")
        out.append(f"  {'recent:' if i == 0 else '':<11} {run.scheduled_at}  {run.workflow_id} (run {run.run_id}) "
                   f"{run.status}{outcome}")
    return [lines(*out)]


def _schedule_operated(done: ScheduleOperation, *, as_json: bool) -> list[Output]:
    """``flowctl schedule trigger|pause|unpause|backfill``: what was done."""
    if as_json:
        return [json_text(done.to_dict(), indent=None, ascii_only=True)]
    what = {"trigger": "triggered", "pause": "paused", "unpause": "unpaused", "backfill": "backfill requested"}
    text = f"{done.schedule_id} {what.get(done.action, done.action)}"
    if done.action == "trigger":
        text += (f": started {done.workflow_id} (run {done.run_id})" if done.workflow_id
                 else ": no run seen yet (the overlap policy may skip it; see `flowctl schedule describe`)")
    elif done.detail:
        text += f": {done.detail}"
    return [lines(text)]


def initialized(result: InitResult, *, as_json: bool) -> list[Output]:
    """``flowctl init``: the files written, then what to run next."""
    if as_json:
        return [json_text(result.to_dict())]
    where = result.directory
    return [lines(*(f"wrote {path}" for path in result.files),
                  f"initialized the {result.example} example (namespace {result.namespace}) in {where}; next: "
                  f"cd {where} && flowctl validate && flowctl test && flowctl dev --demo")]


def stubs_written(result: StubsWritten, *, as_json: bool) -> list[Output]:
    """``flowctl stubs``: the stubs and the ``.luarc.json`` written."""
    if as_json:
        return [json_text(result.to_dict())]
    return [lines(*(f"wrote {path}" for path in [*result.files, *([result.luarc] if result.luarc else [])]),
                  "lua-language-server reads .luarc.json from the folder your editor opens (docs/editors.md)")]

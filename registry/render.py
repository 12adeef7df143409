"""What the registry commands print: validate, schema export, diff, apply, registry list|show|history|rollback.

Every function returns the command's output as :class:`Output` pieces (text, stream, colour)
that ``cli.py`` prints in order; JSON bodies are the results' ``to_dict()``. Diagnostics
are formatted for people (text), machines (json) and GitHub Actions (annotations).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from registry.diagnostics import Diagnostic, Severity
from registry.errors import FlowError
from registry.plan import Action, Plan, unified_diff
from registry.revision import PYTHON_KIND, Revision, dump_data
from registry.schedules import ScheduleAction, ScheduleChange, ScheduleReport
from registry.schema_export import FILE_SCHEMA
from registry.store import ApplyEvent

if TYPE_CHECKING:
    from registry.browse import ShownRevision
    from registry.copy import CopyResult
    from registry.gate import GateVerdict, RunDivergence
    from registry.publish import ApplyOutcome, Rollback, TreeCheck, TreeDiff
    from registry.validate import ValidationReport

__all__ = ["FORMATS", "Format", "Output", "applied", "apply_progress", "copied", "crashed", "diagnostics_report",
           "diffed", "entry_list", "failed", "history", "json_text", "lines", "plan_text", "rolled_back",
           "schedule_report", "schemas_written", "shown", "validation"]


Format = Literal["text", "json", "github"]
FORMATS: tuple[Format, ...] = ("text", "json", "github")


def summary(diagnostics: Sequence[Diagnostic], *, files: int | None = None,
            entries: int | None = None) -> str:
    """One line: ``2 errors, 1 warning in 3 files (12 entries)`` or ``ok: …``."""
    errors = sum(d.severity is Severity.ERROR for d in diagnostics)
    warnings = len(diagnostics) - errors
    scope = ""
    if files is not None:
        scope = f" in {_plural(files, 'file')}"
        if entries is not None:
            scope += f" ({_plural(entries, 'entry', 'entries')})"
    if not diagnostics:
        return f"ok: no problems{scope}"
    return f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')}{scope}"


def diagnostics_report(diagnostics: Sequence[Diagnostic], fmt: Format = "text", *, files: int | None = None,
           entries: int | None = None) -> str:
    """All diagnostics in ``fmt`` (text for people, json for tools, github annotations), ending with a newline."""
    if fmt == "json":
        return _render_json(diagnostics, files, entries)
    if fmt == "github":
        return _render_github(diagnostics, files, entries)
    if fmt == "text":
        return _render_text(diagnostics, files, entries)
    raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


def _render_text(diagnostics: Sequence[Diagnostic], files: int | None, entries: int | None) -> str:
    lines = []
    for d in diagnostics:
        lines.append(f"{d.location()}: {d.code} {d.severity}: {d.message}")
        if d.path:
            lines.append(f"  at: {d.path}")
        if d.hint:
            lines.append(f"  hint: {d.hint}")
    lines.append(summary(diagnostics, files=files, entries=entries))
    return "\n".join(lines) + "\n"


def _render_json(diagnostics: Sequence[Diagnostic], files: int | None, entries: int | None) -> str:
    errors = sum(d.severity is Severity.ERROR for d in diagnostics)
    body = {
        "ok": errors == 0,
        "summary": {"errors": errors, "warnings": len(diagnostics) - errors, "files": files,
                    "entries": entries},
        "diagnostics": [d.to_dict() for d in diagnostics],
    }
    return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


def _escape_data(text: str) -> str:
    # GitHub workflow-command escaping: https://github.com/actions/toolkit (core/src/command.ts)
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _render_github(diagnostics: Sequence[Diagnostic], files: int | None, entries: int | None) -> str:
    lines = []
    for d in diagnostics:
        level = "error" if d.severity is Severity.ERROR else "warning"
        message = d.message + (f"\nhint: {d.hint}" if d.hint else "")
        lines.append(
            f"::{level} file={_escape_property(d.file)},line={d.line},col={d.col},"
            f"title={_escape_property(d.code)}::{_escape_data(message)}"
        )
    lines.append(summary(diagnostics, files=files, entries=entries))
    return "\n".join(lines) + "\n"


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


@dataclass(frozen=True)
class Output:
    """A piece of a command's output: text as printed (newlines included), its stream, its colour."""

    text: str
    err: bool = False
    #: a click colour name; None prints the text as it is
    color: str | None = None


def lines(*texts: str, err: bool = False, color: str | None = None) -> Output:
    """Whole lines: each text followed by a newline."""
    return Output("".join(f"{text}\n" for text in texts), err=err, color=color)


def json_text(body: Any, *, indent: int | None = 2, ascii_only: bool = False, default: Any = None) -> Output:
    """A JSON document on stdout, as one line of output."""
    return lines(json.dumps(body, indent=indent, ensure_ascii=ascii_only, default=default))


def failed(error: FlowError) -> list[Output]:
    """Any command that failed with a FlowError: the message in red, then what to do (stderr)."""
    hint = [lines(f"hint: {error.hint}", err=True)] if error.hint else []
    return [lines(f"error: {error.message}", err=True, color="red"), *hint]


def crashed(error: Exception) -> list[Output]:
    """A bug in flowctl: said briefly, with how to get the traceback (stderr)."""
    return [lines(f"internal error: {type(error).__name__}: {error}", err=True, color="red"),
            lines("hint: rerun with FLOWCTL_DEBUG=1 for a traceback and report it", err=True)]


#: Markers in front of each entry in a printed plan (terraform's).
MARKERS = {Action.CREATED: "+", Action.CHANGED: "~", Action.UNCHANGED: " ", Action.DELETED: "-"}


def validation(report: ValidationReport, fmt: Format) -> list[Output]:
    """``flowctl validate``: every diagnostic and the summary line, in the chosen format."""
    return [Output(diagnostics_report(report.diagnostics, fmt, files=len(report.project.documents),
                          entries=len(report.project.entries)))]


def schemas_written(written: Sequence[Path], directory: Path) -> list[Output]:
    """``flowctl schema export``: one line per file, and how to point an editor at them."""
    return [lines(*(f"wrote {path}" for path in written),
                  f"hint: start entry files with `# yaml-language-server: $schema={directory / FILE_SCHEMA}` (a path "
                  "relative to the YAML file, or a URL)")]


def plan_text(plan: Plan, *, show_diffs: bool = False, show_unchanged: bool = True) -> str:
    """The plan as text: one ``marker ID (kind) action`` line per entry, diffs below changed ones."""
    out: list[str] = []
    for change in plan.changes:
        if change.action is Action.UNCHANGED and not show_unchanged:
            continue
        note = ""
        if change.action is Action.DELETED and not plan.prune:
            note = " (kept: apply --prune deletes it)"
        out.append(f"{MARKERS[change.action]} {change.entry_id} ({change.kind}) {change.action}{note}\n")
        if show_diffs and change.action in (Action.CHANGED, Action.CREATED, Action.DELETED):
            out.append("".join(f"    {line}" for line in unified_diff(change).splitlines(keepends=True)))
    counts = plan.counts()
    deleted = f"{counts['deleted']} to delete"
    if counts["deleted"] and not plan.prune:
        deleted = f"{counts['deleted']} gone from the tree (kept without --prune)"
    out.append(f"Plan: {counts['created']} to create, {counts['changed']} to change, {deleted}, "
               f"{counts['unchanged']} unchanged.\n")
    return "".join(out)


def _diagnostics(diagnostics: Sequence[Diagnostic]) -> list[Output]:
    """Validation warnings (or errors) as text on stderr; nothing when there are none."""
    return [Output(diagnostics_report(diagnostics, "text"), err=True)] if diagnostics else []


def _invalid_tree(result: TreeCheck | ApplyOutcome, *, as_json: bool, what: str) -> list[Output]:
    """An invalid tree: its diagnostics (stderr, or a JSON body on stdout) and what was not done."""
    if as_json:
        return [json_text(result.to_dict())]
    return [*_diagnostics(result.diagnostics), lines(f"error: the tree is invalid; {what}", err=True, color="red"),
            lines("hint: fix the problems above (`flowctl validate` checks the tree on its own)", err=True)]


def diffed(diff: TreeDiff, *, as_json: bool) -> list[Output]:
    """``flowctl diff``: the plan with unified diffs, or the reasons the tree is invalid."""
    if diff.plan is None:
        return _invalid_tree(diff.check, as_json=as_json, what="no plan was computed")
    if as_json:
        return [json_text(diff.to_dict())]
    gate = _gate_report(diff.gate, applying=False) if diff.gate else []
    schedules = schedule_report(diff.schedules) if diff.schedules else []
    return [*_diagnostics(diff.check.diagnostics), Output(plan_text(diff.plan, show_diffs=True)), *schedules, *gate]


def apply_progress(step: TreeCheck | Plan) -> list[Output]:
    """What ``flowctl apply`` prints before it writes: the tree's warnings, then the pending changes."""
    if isinstance(step, Plan):
        return [Output(plan_text(step, show_unchanged=False))] if step.has_changes else []
    return _diagnostics(step.diagnostics)


def applied(outcome: ApplyOutcome, *, as_json: bool) -> list[Output]:
    """``flowctl apply``: one ``ID action`` line per entry and the event, or why nothing was applied."""
    if outcome.plan is None:
        return _invalid_tree(outcome, as_json=as_json, what="nothing was applied")
    if as_json:
        return [json_text(outcome.to_dict())]
    gate = _gate_report(outcome.gate, applying=True) if outcome.gate else []
    if outcome.gate is not None and not outcome.gate.ok:
        return gate
    out = []
    for result in outcome.results:
        notes = [result.note] if result.note else []
        if outcome.dry_run and result.action is not Action.UNCHANGED:
            notes.append("dry run")
        out.append(f"{result.entry_id} {result.action}" + (f" ({'; '.join(notes)})" if notes else ""))
    if outcome.dry_run:
        out.append("dry run: nothing was written")
    elif outcome.event is not None:
        out.append(f"applied as event #{outcome.event.id}")
    schedules = schedule_report(outcome.schedules) if outcome.schedules else []
    return [*gate, lines(*out), *schedules]


#: Markers of schedule actions in a plan, and the words an apply reports them with.
_SCHEDULE_MARKERS = {ScheduleAction.CREATE: "+", ScheduleAction.UPDATE: "~", ScheduleAction.DELETE: "-",
                     ScheduleAction.UNCHANGED: " ", ScheduleAction.KEPT: " ", ScheduleAction.CONFLICT: "!"}
_SCHEDULE_DONE = {ScheduleAction.CREATE: "created", ScheduleAction.UPDATE: "updated",
                  ScheduleAction.DELETE: "deleted"}


def schedule_report(report: ScheduleReport) -> list[Output]:
    """The schedules part of ``diff`` / ``apply --dry-run`` (a plan) or of ``apply`` (what each call did)."""
    out: list[Output] = []
    if report.applied:
        for change in report.changes:
            failed = change.status == "failed" or change.action is ScheduleAction.CONFLICT
            out.append(lines(_schedule_done(change), err=failed, color="red" if failed else None))
    elif report.changes:
        out.append(lines("Schedules on the cluster:", *(_schedule_planned(c) for c in report.changes)))
        counts = report.counts()
        out.append(lines(f"Schedules: {counts['create']} to create, {counts['update']} to update, {counts['delete']} "
                         f"to delete, {counts['unchanged']} unchanged, {counts['kept']} kept."))
    if report.error:
        what = "the registry was written, the schedules were not reconciled" if report.applied else "no plan for them"
        out += [lines(f"{'error' if report.applied else 'schedules'}: {report.error}; {what}", err=True,
                      color="red" if report.applied else "yellow"), lines(f"hint: {report.hint}", err=True)]
    elif report.applied and not report.ok:
        done = [c.schedule_id for c in report.changes if c.changing and c.status == "done"]
        out += [lines(f"error: not every schedule was reconciled (changed: {', '.join(done) or 'none'})", err=True,
                      color="red"),
                lines("hint: fix the cause above and apply again: apply compares each schedule with the cluster, so "
                      "it converges", err=True)]
    return out


def _schedule_label(change: ScheduleChange) -> str:
    entry = f", entry {change.entry_id}" if change.entry_id != change.schedule_id else ""
    return f"{change.schedule_id} (on {change.client_id or '?'}{entry})"


def _schedule_planned(change: ScheduleChange) -> str:
    parts = f": {', '.join(change.parts)}" if change.parts else ""
    why = f": {change.error}" if change.error else f" ({change.note})" if change.note else ""
    return f"{_SCHEDULE_MARKERS[change.action]} {_schedule_label(change)} {change.action}{parts}{why}"


def _schedule_done(change: ScheduleChange) -> str:
    label = f"schedule {_schedule_label(change)}"
    parts = f" ({', '.join(change.parts)})" if change.parts else ""
    if change.action is ScheduleAction.CONFLICT:
        return f"{label} conflict: {change.error}"
    if change.status == "failed":
        return f"{label} failed to {change.action}{parts}: {change.error}"
    if change.status == "skipped":
        return f"{label} not {_SCHEDULE_DONE[change.action]}{parts}: an earlier schedule call failed"
    note = f" ({change.note})" if change.note else ""
    return f"{label} {_SCHEDULE_DONE.get(change.action, str(change.action))}{parts}{note}"


def _gate_report(verdict: GateVerdict, *, applying: bool) -> list[Output]:
    """The replay gate's verdict: one line when it passed or was skipped, else each run it refuses for.

    ``applying``: for ``apply`` (a refusal is its error), else for ``diff`` (what apply would do).
    """
    refused = "error: the replay gate refused" if applying else "replay gate: `flowctl apply` would refuse"
    what = "nothing was written" if applying else "no change was checked"
    if verdict.skipped:
        reason = f" ({verdict.skipped}): {verdict.no_gate_reason}" if verdict.no_gate_reason else ""
        return [lines(f"replay gate: skipped{reason}")] if reason else []
    took = f"({verdict.seconds:.1f} s)"
    if verdict.error:
        return [lines(f"{'error' if applying else 'replay gate'}: {verdict.error}; {what}", err=True,
                      color="red" if applying else "yellow"), lines(f"hint: {verdict.hint}", err=True)]
    replayed = f"{_plural(verdict.runs, 'run')} of {_plural(len(verdict.workflows), 'workflow')}"
    if not verdict.divergences:
        return [lines(f"replay gate: ok: {replayed} replay on the new revisions {took}")]
    out = [f"replay gate: {len(verdict.divergences)} of {replayed} cannot replay on the new revisions {took}"]
    groups: dict[tuple[Any, ...], list[RunDivergence]] = {}
    for d in verdict.divergences:  # runs that fail the same way are listed together
        key = (d.entry_id, d.status, d.history_command, d.new_command, d.where, d.fix, d.already_failing, d.message
               if d.status != "diverged" else "")
        groups.setdefault(key, []).append(d)
    for group in groups.values():
        d = group[0]
        runs = ", ".join(f"{r.workflow_id} ({r.run_id}, {'open' if r.open else 'closed'})" for r in group[:3])
        more = f" and {len(group) - 3} more (--json lists them all)" if len(group) > 3 else ""
        out.append(f"  {d.entry_id}: {_plural(len(group), 'run')} {d.status}: {runs}{more}"
                   + (" (failing on the registry's current revision too: not this apply's doing)"
                      if d.already_failing else ""))
        if d.event_id is not None:
            out.append(f"    history event {d.event_id}: `{d.history_command}`")
        if d.status == "diverged":
            issued = f"issues `{d.new_command}`" if d.new_command else "issues no such command"
            out.append(f"    the new code {issued}" + (f" at {d.where}" if d.where else ""))
        else:
            out.append(f"    the new code fails its workflow task: {d.message}" + (f" at {d.where}" if d.where else ""))
        if d.fix:
            out += [f"    fix: {d.fix.replace(chr(10), chr(10) + ' ' * 9)}", f"      {d.fix_hint}"]
    report = [lines(*out)]
    if verdict.ok:
        return report
    return [*report, lines(f"{refused}: {_plural(len(verdict.blocking), 'run')} would fail on the new code"
                           + (f"; {what}" if applying else ""), err=True, color="red" if applying else "yellow"),
            lines("hint: guard each change with workflow.version as shown (docs/changing-workflows.md), or apply "
                  "anyway with --no-gate --reason TEXT", err=True)]


def entry_list(current: Sequence[Revision], *, as_json: bool) -> list[Output]:
    """``registry list``: every entry's current revision."""
    if as_json:
        return [json_text([rev.to_dict(include_source=False) for rev in current])]
    width = max((len(rev.entry_id) for rev in current), default=0)
    return [lines(*(["the registry is empty (run `flowctl apply`)"] if not current else []),
                  *(f"{rev.entry_id:<{width}}  {rev.kind:<15}  {rev.short_digest}" for rev in current))]


def shown(found: ShownRevision, *, as_json: bool) -> list[Output]:
    """``registry show``: the revision's YAML and Lua source, its imports, and the entry's revisions."""
    if as_json:
        return [json_text(found.to_dict())]
    rev = found.revision
    head = [f"{rev.entry_id} ({rev.kind})", f"revision: {rev.digest}{' (current)' if found.is_current else ''}",
            *(f"import:   {alias} -> {lib_id} {rev.libraries[lib_id].short_digest}"
              for alias, lib_id in sorted(rev.imports.items())),
            *_handler_line(rev), f"--- {rev.entry_id}.yaml"]
    out = [lines(*head), Output(dump_data(rev.data))]
    if rev.source is not None:
        out += [lines(f"--- {rev.source_name}"), Output(rev.source if rev.source.endswith("\n") else rev.source + "\n")]
    revisions = (f"{'*' if info.is_current else ' '} {info.digest[:12]}  {info.at}  event #{info.event_id}"
                 for info in found.revisions)
    return [*out, lines("--- revisions (oldest first)", *revisions)]


def _handler_line(rev: Revision) -> list[str]:
    """A function.python revision's handler: the module file and sha256 it was applied with, or why none."""
    if rev.kind != PYTHON_KIND:
        return []
    spec = rev.data.get("handler")
    if rev.handler_file is None:
        return [f"handler:  {spec} (not found on the python path when applied: its code is not in this revision)"]
    return [f"handler:  {spec} -> {rev.handler_file.path} sha256 {rev.handler_file.sha256}"]


def history(events: Sequence[ApplyEvent], entry_id: str | None, *, as_json: bool) -> list[Output]:
    """``registry history``: each event (who, when, which verb) and what it did to which entries."""
    if as_json:
        return [json_text([event.to_dict() for event in events], ascii_only=True)]
    out = [] if events else [f"no events{' for ' + entry_id if entry_id else ''}"]
    for event in events:
        out.append(f"#{event.id}  {event.at}  {event.verb} by {event.actor}")
        if event.note:
            out.append(f"    note: {event.note}")
        out += [f"    {c.entry_id} {c.action} {(c.previous_digest or '')[:12] or '-'} -> {(c.digest or '')[:12] or '-'}"
                for c in event.changes]
        out += [f"    {r.entry_id} run {r.workflow_id} ({r.run_id}) upgraded {(r.previous_digest or '')[:12] or '-'} "
                f"-> {r.digest[:12]}" for r in event.runs]
    return [lines(*out)]


def rolled_back(done: Rollback, *, as_json: bool) -> list[Output]:
    """``registry rollback``: the revision made current and the event that did it."""
    if as_json:
        return [json_text(done.to_dict())]
    if done.event is None or not done.event.changes:
        return [lines(f"{done.entry_id} is already at {done.revision.short_digest}; nothing to do")]
    was = (done.previous_digest or "")[:12] or "nothing (it was deleted)"
    return [lines(f"{done.entry_id} rolled back to {done.revision.short_digest} (was {was}) as event #{done.event.id}")]


def copied(done: CopyResult, *, as_json: bool) -> list[Output]:
    """``registry copy``: what was added to the target, and that the digests were checked."""
    if as_json:
        return [json_text(done.to_dict())]
    added = ", ".join(f"{count} {table.replace('_', ' ')}" for table, count in done.added.items() if count)
    verb = "merged into" if done.merged else "copied to"
    return [lines(f"{done.source} {verb} {done.target}: {added or 'nothing to add'}",
                  f"{done.verified} revision digest(s) verified in the target")]

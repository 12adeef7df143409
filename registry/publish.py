"""Publishing a tree: validate -> build revisions -> plan -> apply; and rolling an entry back.

A tree with ``temporal.schedule`` entries also has a cluster side: ``diff`` and ``apply`` hand the
schedules to a ``ScheduleSync`` callback (``registry.schedules``), ``apply`` only after the
registry write succeeded, so a failed write sends nothing to the cluster.

``diff_registry``, ``publish_tree`` and ``rollback`` are the single functions ``flowctl diff``,
``flowctl apply`` and ``flowctl registry rollback`` call (each opens the registry a URL names);
they return plain results with ``to_dict()`` that ``registry.render`` prints.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry.diagnostics import Diagnostic, display_path
from registry.errors import ExitCode, FlowError
from registry.gate import Gate, GateVerdict, run_gate
from registry.open_store import open_store
from registry.plan import Action, Plan, compute_plan
from registry.revision import Revision, build_revisions
from registry.schedules import ScheduleReport, ScheduleSync, schedule_request
from registry.store import ApplyEvent, RevisionStore
from registry.validate import validate_project


@dataclass(frozen=True)
class TreeCheck:
    """The tree's validation result and, when it is valid, its revisions."""

    diagnostics: list[Diagnostic]
    ok: bool
    revisions: dict[str, Revision] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view: what ``diff --json`` and ``apply --json`` print for an invalid tree."""
        return {"ok": self.ok, "diagnostics": [d.to_dict() for d in self.diagnostics]}


@dataclass(frozen=True)
class TreeDiff:
    """The result of ``diff``: the tree's check and, when the tree is valid, its plan against the registry."""

    check: TreeCheck
    plan: Plan | None = None
    #: the replay gate's verdict on the plan (None: no gate was asked for)
    gate: GateVerdict | None = None
    #: what apply would do to the tree's schedules on the cluster (None: the tree has none)
    schedules: ScheduleReport | None = None

    @property
    def has_changes(self) -> bool:
        """Apply would write to the registry or change a schedule on the cluster."""
        return self.plan is not None and (self.plan.has_changes or bool(self.schedules and self.schedules.has_changes))

    @property
    def exit_code(self) -> ExitCode:
        """``flowctl diff``: 0 nothing to do, 1 changes pending, 2 invalid tree or schedules that could not be read."""
        if self.plan is None or (self.schedules is not None and self.schedules.error):
            return ExitCode.USAGE
        return ExitCode.PROBLEMS if self.has_changes else ExitCode.OK

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (``flowctl diff --json``)."""
        if self.plan is None:
            return self.check.to_dict()
        return {"ok": True, "prune": self.plan.prune, "has_changes": self.has_changes,
                "counts": self.plan.counts(), "diagnostics": self.check.to_dict()["diagnostics"],
                "changes": [change.to_dict() for change in self.plan.changes],
                **({"gate": self.gate.to_dict()} if self.gate else {}),
                **({"schedules": self.schedules.to_dict()} if self.schedules else {})}


@dataclass(frozen=True)
class EntryResult:
    """What happened (or, in a dry run, would happen) to one entry."""

    entry_id: str
    kind: str
    action: Action
    digest: str | None
    previous_digest: str | None
    #: extra words for the user, e.g. why a vanished entry was kept
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.entry_id, "kind": self.kind, "action": str(self.action), "digest": self.digest,
                "previous_digest": self.previous_digest, "note": self.note}


@dataclass(frozen=True)
class ApplyOutcome:
    """The result of ``apply``: diagnostics when invalid, else the plan and what was written.

    A plan the replay gate refused has ``ok`` False, its ``gate`` verdict and no results.
    """

    diagnostics: list[Diagnostic]
    ok: bool
    plan: Plan | None = None
    event: ApplyEvent | None = None
    results: list[EntryResult] = field(default_factory=list)
    dry_run: bool = False
    #: the replay gate's verdict (None: no gate was asked for)
    gate: GateVerdict | None = None
    #: what was done to the tree's schedules on the cluster (None: nothing to do, or not asked)
    schedules: ScheduleReport | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (``flowctl apply --json``)."""
        if self.plan is None:
            return TreeCheck(self.diagnostics, ok=False).to_dict()
        return {"ok": self.ok, "dry_run": self.dry_run, "prune": self.plan.prune, "counts": self.plan.counts(),
                "event": self.event.id if self.event else None,
                "diagnostics": [d.to_dict() for d in self.diagnostics],
                "entries": [result.to_dict() for result in self.results],
                **({"gate": self.gate.to_dict()} if self.gate else {}),
                **({"schedules": self.schedules.to_dict()} if self.schedules else {})}


@dataclass(frozen=True)
class Rollback:
    """The result of ``registry rollback``: the revision made current, and the event (None: it already was)."""

    entry_id: str
    revision: Revision
    event: ApplyEvent | None

    @property
    def previous_digest(self) -> str | None:
        """The revision that was current before (the rolled-back-to one when nothing changed)."""
        return self.event.changes[0].previous_digest if self.event and self.event.changes else self.revision.digest

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (``registry rollback --json``)."""
        return {"id": self.entry_id, "digest": self.revision.digest, "event": self.event.id if self.event else None,
                "previous_digest": self.previous_digest}


#: What ``publish_tree`` reports before it writes: the valid tree's check, then the plan.
Progress = Callable[[TreeCheck | Plan], None]


def check_tree(paths: Sequence[Path | str], *, strict: bool = False, cache_dir: Path | None = None,
               python_paths: Sequence[Path | str] | None = None) -> TreeCheck:
    """Validate the tree (every stage; ``cache_dir``: validate's Lua analysis cache) and build its revisions.

    ``python_paths`` (``--python-path``; default: the entries directories): where function.python
    handler modules are found, so their source is part of the revisions.
    """
    report = validate_project(list(paths), strict=strict, cache_dir=cache_dir, python_paths=python_paths)
    project, diagnostics, ok = report.project, list(report.diagnostics), bool(report.ok)
    if not project.entries and ok:
        shown = ", ".join(display_path(Path(p)) for p in paths) or "entries"
        raise FlowError(f"no entries found under {shown}",
                        hint="pass the directory that holds your entry files with --entries DIR")
    if not ok:
        return TreeCheck(diagnostics=diagnostics, ok=False)
    return TreeCheck(diagnostics=diagnostics, ok=True, revisions=build_revisions(project))


def plan_tree(paths: Sequence[Path | str], store: RevisionStore, *, prune: bool = False,
              strict: bool = False, cache_dir: Path | None = None,
              python_paths: Sequence[Path | str] | None = None) -> TreeDiff:
    """Validate the tree and compare it with the registry; writes nothing."""
    check = check_tree(paths, strict=strict, cache_dir=cache_dir, python_paths=python_paths)
    if not check.ok:
        return TreeDiff(check)
    return TreeDiff(check, compute_plan(check.revisions, store, prune=prune))


def diff_registry(paths: Sequence[Path | str], registry_url: str | None, *, prune: bool = False,
                  strict: bool = False, cache_dir: Path | None = None,
                  python_paths: Sequence[Path | str] | None = None, gate: Gate | None = None,
                  schedules: ScheduleSync | None = None) -> TreeDiff:
    """``flowctl diff``: the tree against the registry ``registry_url`` names (a missing store reads as empty).

    ``gate`` (see registry.gate) replays the open runs the plan would move onto new code; ``schedules``
    (see registry.schedules) says what apply would do to the tree's schedules on the cluster.
    """
    with open_store(registry_url, create=False) as store:
        diff = plan_tree(paths, store, prune=prune, strict=strict, cache_dir=cache_dir, python_paths=python_paths)
        if diff.plan is None:
            return diff
        request = schedule_request(diff.plan, store) if schedules is not None else None
        return dataclasses.replace(diff, gate=run_gate(diff.plan, store, gate),
                                   schedules=schedules(request, apply=False) if schedules and request else None)


def apply_tree(paths: Sequence[Path | str], store: RevisionStore, *, prune: bool = False,
               dry_run: bool = False, strict: bool = False, actor: str | None = None,
               cache_dir: Path | None = None, python_paths: Sequence[Path | str] | None = None) -> ApplyOutcome:
    """Validate, plan and apply the tree in one transaction (``flowctl apply``).

    Invalid input writes nothing. Re-applying an unchanged tree writes nothing and records
    no event. The results say what actually happened, which can differ from the plan when
    another apply wrote the same revisions meanwhile (those read ``unchanged``).
    """
    diff = plan_tree(paths, store, prune=prune, strict=strict, cache_dir=cache_dir, python_paths=python_paths)
    if diff.plan is None:
        return ApplyOutcome(diagnostics=diff.check.diagnostics, ok=False)
    return apply_plan(diff.check, diff.plan, store, dry_run=dry_run, actor=actor)


def publish_tree(paths: Sequence[Path | str], registry_url: str | None, *, prune: bool = False,
                 dry_run: bool = False, strict: bool = False, cache_dir: Path | None = None,
                 on_progress: Progress | None = None,
                 python_paths: Sequence[Path | str] | None = None, gate: Gate | None = None,
                 no_gate_reason: str | None = None, schedules: ScheduleSync | None = None) -> ApplyOutcome:
    """``flowctl apply``: validate, plan and apply the tree to the registry ``registry_url`` names.

    The tree is checked before the store is opened, so an invalid tree creates no registry file;
    a dry run creates none either. ``on_progress`` sees the valid tree's check, then the plan,
    before anything is written (a conflict raised by the write comes after both).
    ``gate`` (see registry.gate) replays the open runs the plan would move onto new code, a dry
    run too; a refusal writes nothing. ``no_gate_reason`` skips it and is recorded in the event.
    ``schedules`` (see registry.schedules) reconciles the tree's schedules with the cluster once the
    registry write succeeded (a dry run only plans them); a failed call makes the outcome not ok.
    """
    check = check_tree(paths, strict=strict, cache_dir=cache_dir, python_paths=python_paths)
    if not check.ok:
        return ApplyOutcome(diagnostics=check.diagnostics, ok=False)
    report = on_progress or (lambda step: None)
    report(check)
    with open_store(registry_url, create=not dry_run) as store:
        plan = compute_plan(check.revisions, store, prune=prune)
        report(plan)
        verdict = run_gate(plan, store, gate, no_gate_reason=no_gate_reason)
        if verdict is not None and not verdict.ok:
            return ApplyOutcome(diagnostics=check.diagnostics, ok=False, plan=plan, dry_run=dry_run, gate=verdict)
        request = schedule_request(plan, store) if schedules is not None else None
        outcome = apply_plan(check, plan, store, dry_run=dry_run, gate=verdict)
    if schedules is None or request is None:
        return outcome
    synced = schedules(request, apply=not dry_run)
    return dataclasses.replace(outcome, schedules=synced, ok=outcome.ok and synced.ok)


def apply_plan(check: TreeCheck, plan: Plan, store: RevisionStore, *, dry_run: bool = False,
               actor: str | None = None, gate: GateVerdict | None = None) -> ApplyOutcome:
    """Write a plan computed from a valid tree (one transaction), and say what happened to each entry.

    ``gate``: the replay gate's verdict, noted in the apply event.
    """
    event = None if dry_run else store.apply(plan, actor=actor, note=gate.note() if gate else "")
    written = {c.entry_id: c for c in event.changes} if event else {}
    results = []
    for change in plan.changes:
        action, digest, note = change.action, change.digest, ""
        if action is Action.DELETED and not plan.prune:
            action, digest = Action.UNCHANGED, change.previous_digest
            note = "gone from the tree; apply --prune deletes it"
        elif not dry_run and action is not Action.UNCHANGED and change.entry_id not in written:
            action, note = Action.UNCHANGED, "already applied by a concurrent apply"
        results.append(EntryResult(change.entry_id, change.kind, action, digest,
                                   change.previous_digest, note))
    return ApplyOutcome(diagnostics=check.diagnostics, ok=True, plan=plan, event=event, results=results,
                        dry_run=dry_run, gate=gate)


def rollback_entry(store: RevisionStore, entry_id: str, ref: str, *, actor: str | None = None) -> Rollback:
    """Make revision ``ref`` (a digest or prefix) of ``entry_id`` current again, as a new event."""
    revision = store.resolve(entry_id, ref)
    return Rollback(entry_id, revision, store.rollback(revision, actor=actor))


def rollback(registry_url: str | None, entry_id: str, ref: str) -> Rollback:
    """``flowctl registry rollback``: :func:`rollback_entry` on the registry ``registry_url`` names."""
    with open_store(registry_url, create=False) as store:
        return rollback_entry(store, entry_id, ref)

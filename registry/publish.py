"""Publishing a tree: validate -> build revisions -> plan -> apply; and rolling an entry back.

These are the single functions ``flowctl diff``, ``flowctl apply`` and ``flowctl registry
rollback`` call; they return plain results that the CLI renders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry.diagnostics import Diagnostic, display_path
from registry.errors import FlowError
from registry.plan import Action, Plan, compute_plan
from registry.revision import Revision, build_revisions
from registry.store import ApplyEvent, RevisionStore
from registry.validate import validate_project


@dataclass(frozen=True)
class TreeCheck:
    """The tree's validation result and, when it is valid, its revisions."""

    diagnostics: list[Diagnostic]
    ok: bool
    revisions: dict[str, Revision] = field(default_factory=dict)


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
    """The result of ``apply``: diagnostics when invalid, else the plan and what was written."""

    diagnostics: list[Diagnostic]
    ok: bool
    plan: Plan | None = None
    event: ApplyEvent | None = None
    results: list[EntryResult] = field(default_factory=list)
    dry_run: bool = False


def check_tree(paths: Sequence[Path | str], *, strict: bool = False, cache_dir: Path | None = None) -> TreeCheck:
    """Validate the tree (every stage; ``cache_dir``: validate's Lua analysis cache) and build its revisions."""
    report = validate_project(list(paths), strict=strict, cache_dir=cache_dir)
    project, diagnostics, ok = report.project, list(report.diagnostics), bool(report.ok)
    if not project.entries and ok:
        shown = ", ".join(display_path(Path(p)) for p in paths) or "entries"
        raise FlowError(f"no entries found under {shown}",
                        hint="pass the directory that holds your entry files with --entries DIR")
    if not ok:
        return TreeCheck(diagnostics=diagnostics, ok=False)
    return TreeCheck(diagnostics=diagnostics, ok=True, revisions=build_revisions(project))


def plan_tree(paths: Sequence[Path | str], store: RevisionStore, *, prune: bool = False,
              strict: bool = False, cache_dir: Path | None = None) -> tuple[TreeCheck, Plan | None]:
    """Validate the tree and compare it with the registry (``flowctl diff``); writes nothing."""
    check = check_tree(paths, strict=strict, cache_dir=cache_dir)
    if not check.ok:
        return check, None
    return check, compute_plan(check.revisions, store, prune=prune)


def apply_tree(paths: Sequence[Path | str], store: RevisionStore, *, prune: bool = False,
               dry_run: bool = False, strict: bool = False, actor: str | None = None,
               cache_dir: Path | None = None) -> ApplyOutcome:
    """Validate, plan and apply the tree in one transaction (``flowctl apply``).

    Invalid input writes nothing. Re-applying an unchanged tree writes nothing and records
    no event. The results say what actually happened, which can differ from the plan when
    another apply wrote the same revisions meanwhile (those read ``unchanged``).
    """
    check, plan = plan_tree(paths, store, prune=prune, strict=strict, cache_dir=cache_dir)
    if plan is None:
        return ApplyOutcome(diagnostics=check.diagnostics, ok=False)
    return apply_plan(check, plan, store, dry_run=dry_run, actor=actor)


def apply_plan(check: TreeCheck, plan: Plan, store: RevisionStore, *, dry_run: bool = False,
               actor: str | None = None) -> ApplyOutcome:
    """Write a plan computed from a valid tree (one transaction), and say what happened to each entry."""
    event = None if dry_run else store.apply(plan, actor=actor)
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
                        dry_run=dry_run)


def rollback_entry(store: RevisionStore, entry_id: str, ref: str, *,
                   actor: str | None = None) -> tuple[Revision, ApplyEvent | None]:
    """Make revision ``ref`` (a digest or prefix) of ``entry_id`` current again, as a new event."""
    revision = store.resolve(entry_id, ref)
    return revision, store.rollback(revision, actor=actor)

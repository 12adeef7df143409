"""Publishing a tree: validate -> build revisions -> plan -> apply; and rolling an entry back.

These are the single functions ``flowctl diff``, ``flowctl apply`` and ``flowctl registry
rollback`` call; they return plain results that the CLI renders.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry.diagnostics import Diagnostic
from registry.loader import load_project
from registry.plan import Action, Plan, compute_plan
from registry.revision import Revision, build_revisions
from registry.store import ApplyEvent, RevisionStore


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


def _validator() -> Callable[..., Any] | None:
    """``registry.validate.validate_project`` when that stage is installed (it is built separately)."""
    try:
        module = importlib.import_module("registry.validate")
    except ImportError:
        return None
    found = getattr(module, "validate_project", None)
    return found if callable(found) else None


def check_tree(paths: Sequence[Path | str], *, strict: bool = False) -> TreeCheck:
    """Validate the tree (every stage) and, when valid, build its revisions."""
    validate = _validator()
    if validate is not None:
        report = validate(list(paths), strict=strict)
        project, diagnostics, ok = report.project, list(report.diagnostics), bool(report.ok)
    else:  # only the loading stage is available: still refuse what cannot be loaded
        project = load_project(paths)
        diagnostics = sorted(project.diagnostics)
        ok = not any(d.is_error or strict for d in diagnostics)
    if not ok:
        return TreeCheck(diagnostics=diagnostics, ok=False)
    return TreeCheck(diagnostics=diagnostics, ok=True, revisions=build_revisions(project))


def plan_tree(paths: Sequence[Path | str], store: RevisionStore, *, prune: bool = False,
              strict: bool = False) -> tuple[TreeCheck, Plan | None]:
    """Validate the tree and compare it with the registry (``flowctl diff``); writes nothing."""
    check = check_tree(paths, strict=strict)
    if not check.ok:
        return check, None
    return check, compute_plan(check.revisions, store, prune=prune)


def apply_tree(paths: Sequence[Path | str], store: RevisionStore, *, prune: bool = False,
               dry_run: bool = False, strict: bool = False, actor: str | None = None) -> ApplyOutcome:
    """Validate, plan and apply the tree in one transaction (``flowctl apply``).

    Invalid input writes nothing. Re-applying an unchanged tree writes nothing and records
    no event. The results say what actually happened, which can differ from the plan when
    another apply wrote the same revisions meanwhile (those read ``unchanged``).
    """
    check, plan = plan_tree(paths, store, prune=prune, strict=strict)
    if plan is None:
        return ApplyOutcome(diagnostics=check.diagnostics, ok=False)
    event = None if dry_run else store.apply(plan, actor=actor)
    written = {c.entry_id: c for c in event.changes} if event else {}
    results = []
    for change in plan.changes:
        action = change.action
        note = ""
        if action is Action.DELETED and not prune:
            action, note = Action.UNCHANGED, "gone from the tree; apply --prune deletes it"
        elif not dry_run and action is not Action.UNCHANGED and change.entry_id not in written:
            action, note = Action.UNCHANGED, "already applied by a concurrent apply"
        results.append(EntryResult(change.entry_id, change.kind, action, change.digest,
                                   change.previous_digest, note))
    return ApplyOutcome(diagnostics=check.diagnostics, ok=True, plan=plan, event=event, results=results,
                        dry_run=dry_run)


def rollback_entry(store: RevisionStore, entry_id: str, ref: str, *,
                   actor: str | None = None) -> tuple[Revision, ApplyEvent | None]:
    """Make revision ``ref`` (a digest or prefix) of ``entry_id`` current again, as a new event."""
    revision = store.resolve(entry_id, ref)
    return revision, store.rollback(revision, actor=actor)

"""The plan: what applying a tree would do to the registry, entry by entry, with unified diffs.

``created`` (in the tree, not in the registry), ``changed`` (digest differs), ``unchanged``,
``deleted`` (in the registry, gone from the tree: removed only with ``--prune``).
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from registry.revision import PYTHON_KIND, HandlerFile, Revision, dump_data


class Action(enum.StrEnum):
    CREATED = "created"
    CHANGED = "changed"
    UNCHANGED = "unchanged"
    DELETED = "deleted"


@dataclass(frozen=True)
class PlannedChange:
    """One entry's line in the plan: the revision in the tree (new) and in the registry (old)."""

    entry_id: str
    action: Action
    new: Revision | None
    old: Revision | None

    @property
    def kind(self) -> str:
        rev = self.new or self.old
        assert rev is not None
        return rev.kind

    @property
    def digest(self) -> str | None:
        return self.new.digest if self.new else None

    @property
    def previous_digest(self) -> str | None:
        return self.old.digest if self.old else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (``flowctl diff --json``), with the unified diff of a pending change."""
        return {"id": self.entry_id, "kind": self.kind, "action": str(self.action), "digest": self.digest,
                "previous_digest": self.previous_digest,
                "diff": "" if self.action is Action.UNCHANGED else unified_diff(self)}


@dataclass(frozen=True)
class Plan:
    """Every entry of the tree and of the registry, sorted by ID, with what apply does to it."""

    changes: tuple[PlannedChange, ...] = ()
    #: whether entries gone from the tree are deleted (``--prune``) or kept
    prune: bool = False

    def of(self, action: Action) -> list[PlannedChange]:
        """The changes with ``action``, in entry-ID order."""
        return [c for c in self.changes if c.action is action]

    def writes(self) -> list[PlannedChange]:
        """What apply writes: created and changed entries, plus deleted ones when pruning."""
        written = {Action.CREATED, Action.CHANGED} | ({Action.DELETED} if self.prune else set())
        return [c for c in self.changes if c.action in written]

    def applied_to(self, current: Mapping[str, Revision]) -> dict[str, Revision]:
        """The registry's current revisions by entry ID as they are once apply has written this plan."""
        after = dict(current)
        for change in self.writes():
            if change.new is not None:
                after[change.entry_id] = change.new
            else:
                after.pop(change.entry_id, None)
        return after

    @property
    def has_changes(self) -> bool:
        """True when apply (with the same ``prune``) would write anything."""
        return bool(self.writes())

    def counts(self) -> dict[str, int]:
        return {str(action): len(self.of(action)) for action in Action}


class CurrentRevisions(Protocol):
    """What planning reads from a store (:class:`~registry.store.RevisionStore` has it)."""

    def current_digests(self) -> dict[str, str]: ...

    def current(self, entry_id: str) -> Revision | None: ...


def compute_plan(revisions: Mapping[str, Revision], store: CurrentRevisions, *, prune: bool = False) -> Plan:
    """Compare the tree's revisions with the registry's current ones.

    Only the namespaces present in the tree are compared: entries another team applied under
    another namespace are never listed as deleted (nor pruned) by this tree.
    """
    namespaces = {rev.namespace for rev in revisions.values()}
    current = {entry_id: digest for entry_id, digest in store.current_digests().items()
               if entry_id.split(":", 1)[0] in namespaces}
    changes: list[PlannedChange] = []
    for entry_id in sorted(set(revisions) | set(current)):
        new = revisions.get(entry_id)
        old_digest = current.get(entry_id)
        old: Revision | None = None
        if old_digest is not None and (new is None or old_digest != new.digest):
            # the old revision, for diffs; None if another apply deleted the entry a moment ago
            old = store.current(entry_id)
            old_digest = old.digest if old is not None else None
        if new is None:
            if old is not None:
                changes.append(PlannedChange(entry_id, Action.DELETED, None, old))
        elif old_digest is None:
            changes.append(PlannedChange(entry_id, Action.CREATED, new, None))
        elif old_digest == new.digest:
            changes.append(PlannedChange(entry_id, Action.UNCHANGED, new, new))
        else:
            changes.append(PlannedChange(entry_id, Action.CHANGED, new, old))
    return Plan(changes=tuple(changes), prune=prune)


def unified_diff(change: PlannedChange) -> str:
    """A unified diff of the entry's YAML and Lua source (old registry revision -> tree)."""
    old, new = change.old, change.new
    label = change.entry_id
    parts = [_diff(dump_data(old.data) if old else "", dump_data(new.data) if new else "",
                   f"registry/{label}.yaml", f"tree/{label}.yaml")]
    old_source = old.source if old and old.source is not None else ""
    new_source = new.source if new and new.source is not None else ""
    old_name = (old.source_name if old else None) or (new.source_name if new else None) or f"{label}.lua"
    new_name = (new.source_name if new else None) or old_name
    parts.append(_diff(old_source, new_source, f"registry/{old_name}", f"tree/{new_name}"))
    parts.append(_library_changes(old, new))
    parts.append(_handler_change(old, new))
    return "".join(p for p in parts if p)


def _diff(before: str, after: str, before_name: str, after_name: str) -> str:
    if before == after:
        return ""
    lines = difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                 before_name, after_name)
    no_newline = "\n\\ No newline at end of file\n"
    return "".join(line if line.endswith("\n") else line + no_newline for line in lines)


def _library_changes(old: Revision | None, new: Revision | None) -> str:
    """Why an entry changed when its own YAML and Lua did not: an imported library changed."""
    if old is None or new is None:
        return ""
    lines = []
    for lib_id in sorted(set(old.libraries) | set(new.libraries)):
        before = old.libraries[lib_id].short_digest if lib_id in old.libraries else "absent"
        after = new.libraries[lib_id].short_digest if lib_id in new.libraries else "absent"
        if before != after:
            lines.append(f"library {lib_id}: {before} -> {after}\n")
    return "".join(lines)


def _handler_change(old: Revision | None, new: Revision | None) -> str:
    """A function.python handler module whose file or digest changed (its source diff is above)."""
    if old is None or new is None or PYTHON_KIND not in (old.kind, new.kind):
        return ""
    before, after = old.handler_file, new.handler_file
    if before == after:
        return ""
    if before is not None and after is not None and before.path == after.path:
        return f"handler {after.path} sha256 {before.sha256[:12]} -> {after.sha256[:12]}\n"

    def shown(handler: HandlerFile | None) -> str:
        return f"{handler.path} sha256 {handler.sha256[:12]}" if handler else "not resolved on the python path"

    return f"handler {shown(before)} -> {shown(after)}\n"

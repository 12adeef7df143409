"""Where a running worker gets the revisions it serves: the registry store, or a project directory.

Workflow types are entry IDs or ``meta.temporal.workflow.name``; activity types are
entry IDs. A pinned workflow run asks for the exact digest it started on, so the
store-backed source keeps every revision it ever served (and fetches older ones from
the store on demand) while new applies are picked up by polling the store's cheap
``change_token()`` — no worker restart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from registry.errors import FlowError
from registry.loader import load_project
from registry.revision import WORKFLOW_KIND, Revision, build_revisions
from registry.store import QuarantinedRun, RunUpgrade
from runner.sandbox.failures import FlowFailure

__all__ = [
    "ProjectRevisionSource",
    "RevisionSource",
    "StoreRevisionSource",
    "imported_libraries",
    "require_entry",
]

ACTIVITY_KINDS = frozenset({"function.lua", "function.python"})


class RevisionSource(Protocol):
    """What a running worker serves."""

    def workflow(self, workflow_type: str, digest: str | None = None) -> Revision:
        """The workflow revision for a type (entry ID or custom name); ``digest`` pins one revision."""
        ...

    def activity(self, activity_type: str) -> Revision:
        """The current revision of the activity entry whose ID is ``activity_type``."""
        ...

    def entry(self, entry_id: str) -> Revision:
        """Any current entry (worker, client, library, ...)."""
        ...

    def upgraded(self, workflow_id: str, run_id: str) -> str | None:
        """The digest ``flowctl upgrade`` moved this run to (None: it runs its pin)."""
        ...

    def quarantined(self, workflow_id: str, run_id: str, activity_id: str = "") -> QuarantinedRun | None:
        """The watchdog's record if this run (or one activity of it) is quarantined (docs/sandbox.md)."""
        ...


class StoreReader(Protocol):
    """The read side of registry.store.RevisionStore that this module needs."""

    def current(self, entry_id: str) -> Revision | None: ...
    def revision(self, entry_id: str, digest: str) -> Revision | None: ...
    def list_current(self) -> list[Revision]: ...
    def change_token(self) -> str: ...
    def run_upgrades(self) -> Mapping[tuple[str, str], RunUpgrade]: ...
    def quarantined_runs(self) -> list[QuarantinedRun]: ...


def imported_libraries(revision: Revision) -> list[tuple[str, Revision]]:
    """``(alias, library revision)`` for every import of the entry and of the libraries it reaches.

    A library's own imports are required by their aliases too; the entry's own aliases win.
    """
    seen: dict[str, str] = {}
    for rev in (revision, *revision.libraries.values()):
        for alias, lib_id in sorted(rev.imports.items()):
            seen.setdefault(alias, lib_id)
    found = []
    for alias, lib_id in sorted(seen.items()):
        library = revision.libraries.get(lib_id)
        if library is None or library.source is None:
            raise FlowError(f"{revision.entry_id}: imported library {lib_id} is missing from its revision",
                            hint="re-apply the entries (`flowctl apply`)")
        found.append((alias, library))
    return found


def require_entry(lookup: Callable[[str], Revision], name: str, *, hint: str | None = None,
                  message: str | None = None) -> Revision:
    """``lookup(name)`` for code outside workflows: its NOT_FOUND failure becomes a FlowError.

    The error says ``message`` (default: the failure's own) with ``hint`` (default: the failure's message).
    """
    try:
        return lookup(name)
    except FlowFailure as failure:
        raise FlowError(message or failure.message, hint=hint or failure.message) from None


def not_found(what: str, name: str, hint: str) -> FlowFailure:
    """The NOT_FOUND failure a worker reports for a type it does not serve."""
    return FlowFailure("NOT_FOUND", f"{what} {name!r} is not in the registry; {hint}", retryable=False)


class _RevisionIndex:
    """Current revisions by ID and by workflow type, plus every revision ever seen (for pins)."""

    def __init__(self) -> None:
        self.current: dict[str, Revision] = {}
        self.workflow_types: dict[str, str] = {}
        self.seen: dict[tuple[str, str], Revision] = {}
        #: ``(workflow_id, run_id)`` -> the digest ``flowctl upgrade`` moved the run to
        self.upgrades: dict[tuple[str, str], str] = {}
        #: ``(workflow_id, run_id, activity_id)`` -> the watchdog's quarantine record
        self.quarantined: dict[tuple[str, str, str], QuarantinedRun] = {}

    def replace(self, revisions: Iterable[Revision]) -> None:
        self.current = {rev.entry_id: rev for rev in revisions}
        for rev in self.current.values():
            self.remember(rev)

    def remember(self, rev: Revision) -> None:
        self.seen[(rev.entry_id, rev.digest)] = rev
        if rev.kind == WORKFLOW_KIND:
            # Names stay known after a rename, so runs started under the old name still resolve.
            self.workflow_types[rev.workflow_type] = rev.entry_id
            self.workflow_types.setdefault(rev.entry_id, rev.entry_id)

    def entry_id_for_workflow(self, workflow_type: str) -> str:
        return self.workflow_types.get(workflow_type, workflow_type)


class StoreRevisionSource:
    """Serves the registry store's revisions; notices new applies within ``poll_interval`` seconds."""

    def __init__(self, store: StoreReader, *, poll_interval: float = 1.0) -> None:
        self.store = store
        self.poll_interval = poll_interval
        self._index = _RevisionIndex()
        self._lock = threading.Lock()
        self._token: str | None = None
        self._checked_at = float("-inf")
        self.refresh(force=True)

    def refresh(self, *, force: bool = False) -> bool:
        """Reload current revisions if the store changed; returns True when it did."""
        with self._lock:
            now = time.monotonic()
            if not force and now - self._checked_at < self.poll_interval:
                return False
            self._checked_at = now
            token = self.store.change_token()
            if token == self._token:
                return False
            self._index.replace(self.store.list_current())
            self._index.upgrades = {key: move.digest for key, move in self.store.run_upgrades().items()}
            self._index.quarantined = {(q.workflow_id, q.run_id, q.activity_id): q
                                       for q in self.store.quarantined_runs()}
            self._token = token
            return True

    def workflow(self, workflow_type: str, digest: str | None = None) -> Revision:
        self.refresh()
        with self._lock:
            entry_id = self._index.entry_id_for_workflow(workflow_type)
            rev = self._pinned(entry_id, digest) if digest else self._index.current.get(entry_id)
        if rev is None or rev.kind != WORKFLOW_KIND:
            pinned = f" at revision {digest[:12]}" if digest else ""
            raise not_found(f"workflow{pinned}", workflow_type,
                            "apply it (`flowctl apply`) or check the workflow type / entry ID")
        return rev

    def _pinned(self, entry_id: str, digest: str) -> Revision | None:
        rev = self._index.seen.get((entry_id, digest))
        if rev is None:
            rev = self.store.revision(entry_id, digest)
            if rev is not None:
                self._index.remember(rev)
        return rev

    def upgraded(self, workflow_id: str, run_id: str) -> str | None:
        self.refresh()
        with self._lock:
            return self._index.upgrades.get((workflow_id, run_id))

    def quarantined(self, workflow_id: str, run_id: str, activity_id: str = "") -> QuarantinedRun | None:
        self.refresh()
        with self._lock:
            return self._index.quarantined.get((workflow_id, run_id, activity_id))

    def activity(self, activity_type: str) -> Revision:
        self.refresh()
        with self._lock:
            rev = self._index.current.get(activity_type)
        if rev is None or rev.kind not in ACTIVITY_KINDS:
            raise not_found("activity", activity_type,
                            "activity types are entry IDs of function.lua / function.python entries")
        return rev

    def entry(self, entry_id: str) -> Revision:
        self.refresh()
        with self._lock:
            rev = self._index.current.get(entry_id)
        if rev is None:
            raise not_found("entry", entry_id, "apply it with `flowctl apply`")
        return rev

    def entries(self, kind: str | None = None) -> list[Revision]:
        """Current revisions (of one kind), sorted by entry ID."""
        self.refresh()
        with self._lock:
            revs = list(self._index.current.values())
        return sorted((r for r in revs if kind is None or r.kind == kind), key=lambda r: r.entry_id)


class ProjectRevisionSource(StoreRevisionSource):
    """Serves revisions built in memory from entry files (tests, ``flowctl test``, ``flowctl dev``)."""

    def __init__(self, revisions: Mapping[str, Revision] | Iterable[Revision]) -> None:
        revs = list(revisions.values()) if isinstance(revisions, Mapping) else list(revisions)
        super().__init__(_MemoryStore(revs), poll_interval=float("inf"))

    @classmethod
    def from_paths(cls, paths: Sequence[Path | str]) -> ProjectRevisionSource:
        """Load entry files (directories or YAML files); refuses a project with errors."""
        project = load_project(paths)
        errors = [d for d in project.diagnostics if d.is_error]
        if errors:
            first = errors[0]
            raise FlowError(f"{len(errors)} problem(s) in the entries, first: {first.file}:{first.line}: "
                            f"{first.message}", hint="run `flowctl validate` to see them all")
        return cls(build_revisions(project))

    def add(self, revision: Revision) -> None:
        """Make another revision available (e.g. an older one that pinned runs still use)."""
        store = self.store
        assert isinstance(store, _MemoryStore)
        store.add(revision)
        self.refresh(force=True)


class _MemoryStore:
    """A StoreReader over revisions held in memory; the newest added per entry is current."""

    def __init__(self, revisions: Iterable[Revision]) -> None:
        self._current: dict[str, Revision] = {}
        self._all: dict[tuple[str, str], Revision] = {}
        self._version = 0
        for rev in revisions:
            self.add(rev)

    def add(self, rev: Revision) -> None:
        self._current[rev.entry_id] = rev
        self._all[(rev.entry_id, rev.digest)] = rev
        self._version += 1

    def current(self, entry_id: str) -> Revision | None:
        return self._current.get(entry_id)

    def revision(self, entry_id: str, digest: str) -> Revision | None:
        return self._all.get((entry_id, digest))

    def list_current(self) -> list[Revision]:
        return list(self._current.values())

    def change_token(self) -> str:
        return str(self._version)

    def run_upgrades(self) -> dict[tuple[str, str], RunUpgrade]:
        return {}

    def quarantined_runs(self) -> list[QuarantinedRun]:
        return []

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"_MemoryStore({sorted(self._current)})"

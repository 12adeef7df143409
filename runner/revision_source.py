"""Where a running worker gets the revisions it serves: the registry store, or a project directory.

Workflow types are entry IDs or ``meta.temporal.workflow.name``; activity types are
entry IDs. A pinned workflow run asks for the exact digest it started on, so the
store-backed source keeps every revision it ever served (and fetches older ones from
the store on demand) while new applies are picked up by polling the store's cheap
``change_token()`` — no worker restart.

A worker runs a :class:`RegistryFollower`: a thread that keeps the source current, woken by the
store's pushed notices (PostgreSQL ``LISTEN/NOTIFY``) or polling ``change_token()`` when the store
has none or the notice connection dropped (reconnected with backoff). While the registry cannot be
reached the worker keeps serving the revisions it holds; the follower reports the outage and the
recovery, and no lookup fails a run because of it.
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
from registry.store import ChangeFeed, QuarantinedRun, RegistryError, RegistryUnavailable, RunUpgrade
from runner.sandbox.failures import FlowFailure

__all__ = [
    "ProjectRevisionSource",
    "RegistryFollower",
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
        self._lock = threading.Lock()  # guards the index; held only for dictionary work
        self._reload_lock = threading.Lock()  # one reload at a time
        self._token: str | None = None
        self._checked_at = float("-inf")
        #: a RegistryFollower keeps this source current (the read path then never waits on the store)
        self.followed = False
        self.reload(force=True)

    @property
    def token(self) -> str | None:
        """The change token of the revisions served now."""
        return self._token

    def refresh(self, *, force: bool = False) -> bool:
        """Reload current revisions if the store changed; returns True when it did.

        Never raises because the registry is away (the revisions held keep being served); with a
        RegistryFollower running only a forced refresh asks the store (the follower keeps it current).
        """
        if self.followed and not force:
            return False
        try:
            return self.reload(force=force)
        except RegistryUnavailable:
            return False

    def reload(self, *, force: bool = True) -> bool:
        """``refresh`` that raises RegistryUnavailable when the store cannot be reached (the follower's)."""
        # the store is asked outside self._lock: lookups of running tasks never wait on the database
        # (one that is away makes a query wait seconds, past the watchdog's allowance)
        with self._reload_lock:
            now = time.monotonic()
            if not force and now - self._checked_at < self.poll_interval:
                return False
            self._checked_at = now
            token = self.store.change_token()
            if token == self._token:
                return False
            current = self.store.list_current()
            upgrades = {key: move.digest for key, move in self.store.run_upgrades().items()}
            quarantined = {(q.workflow_id, q.run_id, q.activity_id): q for q in self.store.quarantined_runs()}
            with self._lock:
                self._index.replace(current)
                self._index.upgrades = upgrades
                self._index.quarantined = quarantined
                self._token = token
            return True

    def workflow(self, workflow_type: str, digest: str | None = None) -> Revision:
        self.refresh()
        with self._lock:
            entry_id = self._index.entry_id_for_workflow(workflow_type)
            rev = self._index.seen.get((entry_id, digest)) if digest else self._index.current.get(entry_id)
        if rev is None and digest:
            rev = self._pinned(entry_id, digest)
        if rev is None or rev.kind != WORKFLOW_KIND:
            pinned = f" at revision {digest[:12]}" if digest else ""
            raise not_found(f"workflow{pinned}", workflow_type,
                            "apply it (`flowctl apply`) or check the workflow type / entry ID")
        return rev

    def _pinned(self, entry_id: str, digest: str) -> Revision | None:
        """A revision not held yet, from the store (outside the index lock)."""
        try:
            rev = self.store.revision(entry_id, digest)
        except RegistryUnavailable as error:  # retryable: the task runs again once it is back
            raise FlowFailure("REGISTRY_UNAVAILABLE", f"revision {digest[:12]} of {entry_id} is not cached "
                              f"and {error.message}", retryable=True) from None
        if rev is not None:
            with self._lock:
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


#: Seconds between reconnections of the notice feed while they keep failing (then the last, repeated).
FEED_BACKOFF = (0.5, 1.0, 2.0, 4.0, 5.0)


class RegistryFollower:
    """Keeps a StoreRevisionSource current from a thread: pushed notices, else polling, through outages.

    ``report(event, level, **fields)`` hears what happened: ``registry.reloaded`` (a change was
    picked up), ``registry.unavailable`` / ``registry.recovered`` (the store could not be reached,
    and how long), ``registry.push_lost`` / ``registry.push_connected`` (the notice connection).
    """

    def __init__(self, source: StoreRevisionSource, *, report: Callable[..., None],
                 safety_poll: float = 30.0) -> None:
        self.source = source
        self.report = report
        #: with pushed notices, still poll this often (a notice lost in a network split is caught up)
        self.safety_poll = safety_poll
        self.available = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="flowctl-registry-follower", daemon=True)
        self._feed: ChangeFeed | None = None
        self._feed_failures = 0
        self._next_feed_try = 0.0
        self._pushes = callable(getattr(source.store, "change_feed", None))

    def start(self) -> RegistryFollower:
        """Follow from a daemon thread; the source's read path stops asking the store itself."""
        self.source.followed = True
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop following (the source polls on reads again)."""
        self._stop.set()
        self._thread.join(timeout=10)
        self.source.followed = False
        if self._feed is not None:
            self._feed.close()

    def _run(self) -> None:
        down_since: float | None = None
        last_poll = time.monotonic()
        while not self._stop.is_set():
            self._connect_feed()
            try:
                changed = self.source.reload()
                last_poll = time.monotonic()
            except RegistryUnavailable as error:
                if down_since is None:
                    down_since = time.monotonic()
                    self.available = False
                    self.report("registry.unavailable", "warning", error=error.message,
                                msg="serving the revisions held; new applies wait until it is back")
            else:
                if down_since is not None:
                    self.available = True
                    self.report("registry.recovered", "info", down=f"{time.monotonic() - down_since:.1f}s")
                    down_since = None
                if changed:
                    self.report("registry.reloaded", "info", token=self.source.token,
                                via="push" if self._feed is not None else "poll")
            self._wait(down=down_since is not None, until=last_poll + self.safety_poll)

    def _connect_feed(self) -> None:
        if not self._pushes or self._feed is not None or time.monotonic() < self._next_feed_try:
            return
        try:
            self._feed = self.source.store.change_feed()  # type: ignore[attr-defined]
        except RegistryError as error:
            delay = FEED_BACKOFF[min(self._feed_failures, len(FEED_BACKOFF) - 1)]
            self._feed_failures += 1
            self._next_feed_try = time.monotonic() + delay
            if self._feed_failures == 1:
                self.report("registry.push_lost", "warning", error=error.message,
                            msg=f"polling every {self.source.poll_interval:g}s; reconnecting")
            return
        if self._feed is None:  # the store has no notices (SQLite): poll
            self._pushes = False
        elif self._feed_failures:
            self._feed_failures = 0
            self.report("registry.push_connected", "info")

    def _wait(self, *, down: bool, until: float) -> None:
        """Until a notice arrives (or, polling, for one interval); with notices, poll at ``until`` anyway."""
        feed = self._feed
        if feed is None or down:
            self._stop.wait(min(self.source.poll_interval, self.safety_poll))
            return
        try:
            while not self._stop.is_set() and time.monotonic() < until:
                if feed.wait(min(1.0, max(until - time.monotonic(), 0.01))):  # short slices: stop() is quick
                    return
        except RegistryError as error:
            feed.close()
            self._feed = None
            self._feed_failures = 1
            self._next_feed_try = time.monotonic() + FEED_BACKOFF[0]
            self.report("registry.push_lost", "warning", error=error.message,
                        msg=f"polling every {self.source.poll_interval:g}s; reconnecting")


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

"""The revision store: one small interface (registry.open_store picks the implementation by URL).

Readers (the worker) use ``current``, ``revision``, ``list_current`` and ``change_token``;
writers (``flowctl apply`` / ``registry rollback``) use ``apply`` and ``rollback``, each one
transaction recorded as an :class:`ApplyEvent`. The worker's supervisor records the runs its
watchdog stopped (``quarantine_run``), which workers then refuse to run again.
"""

from __future__ import annotations

import getpass
import os
import socket
from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

from registry.errors import FlowError
from registry.plan import Plan
from registry.revision import Revision


class RegistryError(FlowError):
    """The store cannot be opened or used (not a registry, newer schema, corrupt, ...)."""


class RegistryConflict(FlowError):
    """Another apply changed the entries this plan was computed against."""


class RegistryUnavailable(RegistryError):
    """The registry's server cannot be reached right now (a worker keeps serving what it has)."""


class ChangeFeed(Protocol):
    """Pushed change notices of a store (PostgreSQL ``LISTEN``); see ``RevisionStore.change_feed``."""

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds; True when a write was committed meanwhile.

        Raises RegistryUnavailable when the connection is lost (the caller reconnects).
        """
        ...

    def close(self) -> None:
        """Stop listening."""
        ...


@dataclass(frozen=True)
class RegistryRows:
    """Every row of a registry, table by table, in the column order of the schema (``registry copy``)."""

    #: ``(id, verb, actor, at, note)`` by id
    events: tuple[tuple[Any, ...], ...]
    #: ``(entry_id, digest, kind, data_yaml, source, source_name, imports_json, libraries_json, event_id)``
    revisions: tuple[tuple[Any, ...], ...]
    #: ``(entry_id, digest, event_id)``
    current: tuple[tuple[Any, ...], ...]
    #: ``(event_id, entry_id, action, digest, previous_digest)``
    event_changes: tuple[tuple[Any, ...], ...]
    #: ``(event_id, workflow_id, run_id, entry_id, digest, previous_digest)``
    run_upgrades: tuple[tuple[Any, ...], ...]
    #: ``(workflow_id, run_id, activity_id, entry_id, reason, lua_where, history_length, actor, at)`` by id
    quarantined_runs: tuple[tuple[Any, ...], ...]

    def counts(self) -> dict[str, int]:
        """Rows per table."""
        return {name: len(getattr(self, name)) for name in TABLES}


#: The registry's tables in an order that satisfies their foreign keys.
TABLES = ("events", "revisions", "current", "event_changes", "run_upgrades", "quarantined_runs")


@dataclass(frozen=True)
class EntryChange:
    """What one apply event did to one entry."""

    entry_id: str
    #: ``created`` | ``changed`` | ``deleted``
    action: str
    #: the revision made current (None when deleted)
    digest: str | None
    #: the revision that was current before (None when created)
    previous_digest: str | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (``registry history --json``)."""
        return {"id": self.entry_id, "action": self.action, "digest": self.digest,
                "previous_digest": self.previous_digest}


@dataclass(frozen=True)
class RunUpgrade:
    """``flowctl upgrade``: one run moved to another revision of its workflow entry."""

    workflow_id: str
    run_id: str
    entry_id: str
    #: the revision the run executes from its next workflow task on
    digest: str
    #: the revision it executed before (its pin, or an earlier upgrade)
    previous_digest: str | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (``registry history --json``, ``upgrade --json``)."""
        return {"workflow_id": self.workflow_id, "run_id": self.run_id, "id": self.entry_id,
                "digest": self.digest, "previous_digest": self.previous_digest}


@dataclass(frozen=True)
class QuarantinedRun:
    """The worker's watchdog stopped a Lua call of this run that ran past its allowance (docs/sandbox.md).

    The run's next workflow task (or, with ``activity_id``, that activity's next attempt) fails with a
    non-retryable ``LIMIT_EXCEEDED`` instead of taking down another worker process.
    """

    workflow_id: str
    run_id: str
    entry_id: str
    #: what the watchdog saw, e.g. ``a Lua call ran 4.2 s (allowance 4 s)``
    reason: str
    #: the Lua code it was in: the file, and what the call was doing (``order.lua (signal 'approve')``)
    where: str = ""
    #: ``""``: the run's workflow tasks; else the activity ID of the attempt that was stopped
    activity_id: str = ""
    #: the history length when the stopped workflow task began: the run fails at its first task from there
    history_length: int = 0
    #: ``user@host`` of the supervisor that recorded it
    actor: str = ""
    #: ISO-8601 UTC timestamp
    at: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (``describe --json``)."""
        return {"workflow_id": self.workflow_id, "run_id": self.run_id, "activity_id": self.activity_id or None,
                "id": self.entry_id, "reason": self.reason, "where": self.where,
                "history_length": self.history_length, "actor": self.actor, "at": self.at}


@dataclass(frozen=True)
class ApplyEvent:
    """One recorded write: who, when, which verb, and what it did to which entries."""

    id: int
    #: ``apply`` | ``rollback`` | ``upgrade``
    verb: str
    #: ``user@host`` of the process that wrote it
    actor: str
    #: ISO-8601 UTC timestamp
    at: str
    changes: tuple[EntryChange, ...]
    #: free text recorded with the event, e.g. why an apply skipped its replay gate
    note: str = ""
    #: the runs an ``upgrade`` event moved
    runs: tuple[RunUpgrade, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (``registry history --json``)."""
        return {"event": self.id, "verb": self.verb, "actor": self.actor, "at": self.at, "note": self.note,
                "changes": [change.to_dict() for change in self.changes],
                "runs": [run.to_dict() for run in self.runs]}


@dataclass(frozen=True)
class RevisionInfo:
    """A stored revision of an entry, as listed by ``registry show`` / rollback lookup."""

    entry_id: str
    kind: str
    digest: str
    #: the event that first stored this revision, and when
    event_id: int
    at: str
    is_current: bool

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (``registry show --json``)."""
        return {"digest": self.digest, "event": self.event_id, "at": self.at, "current": self.is_current}


class RevisionStore(ABC):
    """Immutable, content-addressed revisions plus a "current" pointer per entry."""

    #: the URL or path the store was opened from, for messages
    url: str

    # -- read API (the runner) -------------------------------------------------------------

    @abstractmethod
    def current(self, entry_id: str) -> Revision | None:
        """The current revision of ``entry_id``, or None when it is not (or no longer) applied."""

    @abstractmethod
    def revision(self, entry_id: str, digest: str) -> Revision | None:
        """A given revision by its full digest (current or not), or None."""

    @abstractmethod
    def list_current(self) -> list[Revision]:
        """Every current revision, sorted by entry ID."""

    @abstractmethod
    def current_digests(self) -> dict[str, str]:
        """Entry ID -> current digest, without loading the revisions (cheap, for planning)."""

    @abstractmethod
    def change_token(self) -> str:
        """An opaque string that changes after every apply or rollback; cheap enough to poll."""

    # -- history ---------------------------------------------------------------------------

    @abstractmethod
    def revisions_of(self, entry_id: str) -> list[RevisionInfo]:
        """Every stored revision of ``entry_id``, oldest first."""

    @abstractmethod
    def history(self, entry_id: str | None = None, *, limit: int | None = None) -> list[ApplyEvent]:
        """Apply events, newest first; with ``entry_id`` only those touching it (and only its changes)."""

    def resolve(self, entry_id: str, ref: str) -> Revision:
        """The revision of ``entry_id`` whose digest starts with ``ref`` (like a git short hash)."""
        ref = ref.strip().lower()
        if not ref or any(c not in "0123456789abcdef" for c in ref):
            raise FlowError(f"{ref!r} is not a revision digest",
                            hint="pass a hex digest or a prefix of one, as shown by `flowctl registry show`")
        infos = self.revisions_of(entry_id)
        if not infos:
            raise FlowError(f"{entry_id} has never been applied to {self.url}",
                            hint="check the entry ID with `flowctl registry list`")
        matches = [info for info in infos if info.digest.startswith(ref)]
        if not matches:
            raise FlowError(f"{entry_id} has no revision {ref}",
                            hint=f"`flowctl registry history {entry_id}` lists its revisions")
        if len(matches) > 1:
            listed = ", ".join(m.digest[:12] for m in matches)
            raise FlowError(f"revision prefix {ref} of {entry_id} is ambiguous: {listed}",
                            hint="give more digits of the digest")
        found = self.revision(entry_id, matches[0].digest)
        assert found is not None  # listed a moment ago; revisions are never deleted
        return found

    # -- write API (apply / rollback) ------------------------------------------------------

    @abstractmethod
    def run_upgrades(self) -> dict[tuple[str, str], RunUpgrade]:
        """The newest upgrade of every upgraded run, by ``(workflow_id, run_id)``."""

    @abstractmethod
    def apply(self, plan: Plan, *, actor: str | None = None, note: str = "") -> ApplyEvent | None:
        """Apply ``plan`` in one transaction; None when nothing needed writing (no event recorded).

        ``note`` is recorded with the event (e.g. why the replay gate was skipped).
        Raises RegistryConflict when an entry in the plan was changed by someone else since
        the plan was computed (to the same revision is fine: that is not a conflict).
        """

    @abstractmethod
    def rollback(self, revision: Revision, *, actor: str | None = None) -> ApplyEvent | None:
        """Make a stored ``revision`` current again, as a new ``rollback`` event (None if it already is)."""

    @abstractmethod
    def upgrade_runs(self, upgrades: list[RunUpgrade], *, actor: str | None = None,
                     note: str = "") -> ApplyEvent:
        """Record that each run executes ``digest`` from now on, as one ``upgrade`` event.

        Every target revision must be stored (RegistryError otherwise); the move is durable:
        workers read it through ``run_upgrades`` and the change token moves.
        """

    # -- quarantine (the worker's watchdog) ----------------------------------------------------

    @abstractmethod
    def quarantine_run(self, *, workflow_id: str, run_id: str, entry_id: str, reason: str, where: str = "",
                       activity_id: str = "", history_length: int = 0,
                       actor: str | None = None) -> QuarantinedRun:
        """Record a run (or one activity of it, ``activity_id``) as quarantined; the stored record.

        Idempotent: a run quarantined before keeps its first record, which is returned. Workers read
        the records through ``quarantined_runs``; the change token moves.
        """

    @abstractmethod
    def quarantined_runs(self, workflow_id: str | None = None) -> list[QuarantinedRun]:
        """Every quarantine record (of one workflow ID), oldest first."""

    # -- change notices and copying ------------------------------------------------------------

    def change_feed(self) -> ChangeFeed | None:
        """A feed of pushed change notices, or None when the store has none (then poll ``change_token``)."""
        return None

    @abstractmethod
    def export_rows(self) -> RegistryRows:
        """Every row of every table, in one consistent snapshot."""

    @abstractmethod
    def import_rows(self, rows: RegistryRows) -> None:
        """Insert ``rows`` as they are (IDs kept) in one transaction; rows already present are left alone."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection; the store cannot be used afterwards."""

    def __enter__(self) -> RevisionStore:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def default_actor() -> str:
    """``user@host`` of this process, recorded on every apply event."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no passwd entry (some containers)
        user = f"uid{os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return f"{user}@{socket.gethostname()}"

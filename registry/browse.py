"""Read-only views of the registry: what ``flowctl registry list|show|history`` call.

Each opens the registry a URL names without creating it (a missing store reads as empty)
and returns plain results that ``registry.render`` prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from registry.errors import FlowError
from registry.open_store import open_store
from registry.revision import Revision
from registry.store import ApplyEvent, RevisionInfo

__all__ = ["ShownRevision", "entry_history", "list_entries", "show_entry"]


@dataclass(frozen=True)
class ShownRevision:
    """One revision of an entry and every stored revision of that entry, oldest first."""

    revision: Revision
    revisions: list[RevisionInfo]

    @property
    def is_current(self) -> bool:
        """Whether the shown revision is the entry's current one."""
        return any(info.digest == self.revision.digest and info.is_current for info in self.revisions)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (``registry show --json``): the revision with its source, and the list."""
        return {**self.revision.to_dict(), "revisions": [info.to_dict() for info in self.revisions]}


def list_entries(registry_url: str | None) -> list[Revision]:
    """Every entry's current revision, sorted by entry ID."""
    with open_store(registry_url, create=False) as store:
        return store.list_current()


def show_entry(registry_url: str | None, entry_id: str, ref: str | None = None) -> ShownRevision:
    """Revision ``ref`` (a digest or prefix; default: the current one) of ``entry_id``."""
    with open_store(registry_url, create=False) as store:
        revision = store.resolve(entry_id, ref) if ref is not None else store.current(entry_id)
        infos = store.revisions_of(entry_id)
    if revision is None:
        raise FlowError(f"{entry_id} is not in the registry" + (" (it was deleted)" if infos else ""),
                        hint=f"`flowctl registry show {entry_id} --revision REV` shows an old revision"
                        if infos else "check the ID with `flowctl registry list`")
    return ShownRevision(revision, infos)


def entry_history(registry_url: str | None, entry_id: str | None = None, *,
                  limit: int | None = None) -> list[ApplyEvent]:
    """Apply and rollback events, newest first (only those touching ``entry_id`` when given)."""
    with open_store(registry_url, create=False) as store:
        return store.history(entry_id, limit=limit)

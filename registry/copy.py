"""``flowctl registry copy --from URL --to URL [--merge]``: move a registry between stores.

Every revision, apply event (with its changes and upgraded runs), current pointer and
quarantine record is copied as it is, event IDs included, e.g. from the SQLite file of
``flowctl dev`` to the PostgreSQL registry of a fleet. A target that already holds entries
is refused unless ``merge``: then only what it lacks is added (events it has, by verb, actor
and time, are skipped; the others are appended after its own; its current pointers win).
After copying, every copied revision is read back from the target and its digest computed
again from its content, so a damaged copy is reported, not served.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from registry.open_store import open_store
from registry.revision import PYTHON_KIND, Revision, compute_digest
from registry.store import RegistryError, RegistryRows, RevisionStore

__all__ = ["CopyResult", "copy_registry"]


@dataclass(frozen=True)
class CopyResult:
    """What ``registry copy`` did."""

    source: str
    target: str
    merged: bool
    #: rows added to the target, by table
    added: dict[str, int]
    #: revisions whose digest was recomputed from the target's copy and matched
    verified: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (``registry copy --json``)."""
        return {"from": self.source, "to": self.target, "merged": self.merged, "added": self.added,
                "verified": self.verified}


def copy_registry(source_url: str, target_url: str, *, merge: bool = False) -> CopyResult:
    """Copy the registry at ``source_url`` into the one at ``target_url`` (created if needed)."""
    with open_store(source_url, create=False) as source, open_store(target_url) as target:
        if source.url == target.url:
            raise RegistryError(f"--from and --to both name {source.url}", hint="copy to another registry")
        rows = source.export_rows()
        existing = target.export_rows()
        if existing.events and not merge:
            raise RegistryError(f"registry {target.url} is not empty ({len(existing.events)} events)",
                                hint="copy into a new registry, or pass --merge to add only what it lacks")
        wanted = _missing(rows, existing) if existing.events else rows
        target.import_rows(wanted)
        verified = _verify(target, wanted)
        after = target.export_rows().counts()
        added = {name: after[name] - count for name, count in existing.counts().items()}
        return CopyResult(source=source.url, target=target.url, merged=bool(existing.events), added=added,
                          verified=verified)


def _missing(rows: RegistryRows, existing: RegistryRows) -> RegistryRows:
    """The rows of ``rows`` that ``existing`` lacks, source events renumbered after the target's own."""
    seen = {(verb, actor, at): event_id for event_id, verb, actor, at, _ in existing.events}
    next_id = max((row[0] for row in existing.events), default=0) + 1
    renumbered: dict[int, int] = {}
    events = []
    for event_id, verb, actor, at, note in rows.events:
        if (verb, actor, at) in seen:
            renumbered[event_id] = seen[(verb, actor, at)]
            continue
        renumbered[event_id] = next_id
        events.append((next_id, verb, actor, at, note))
        next_id += 1
    new_events = {row[0] for row in events}
    have = {(row[0], row[1]) for row in existing.revisions}
    current = {row[0] for row in existing.current}
    quarantined = {tuple(row[:3]) for row in existing.quarantined_runs}
    return RegistryRows(
        events=tuple(events),
        revisions=tuple((*row[:8], renumbered[row[8]]) for row in rows.revisions if (row[0], row[1]) not in have),
        current=tuple((row[0], row[1], renumbered[row[2]]) for row in rows.current if row[0] not in current),
        event_changes=tuple((renumbered[row[0]], *row[1:]) for row in rows.event_changes
                            if renumbered[row[0]] in new_events),
        run_upgrades=tuple((renumbered[row[0]], *row[1:]) for row in rows.run_upgrades
                           if renumbered[row[0]] in new_events),
        quarantined_runs=tuple(row for row in rows.quarantined_runs if tuple(row[:3]) not in quarantined))


def _verify(target: RevisionStore, rows: RegistryRows) -> int:
    """Read every copied revision back from the target and recompute its digest; the number checked."""
    bad = []
    for row in rows.revisions:
        entry_id, digest = row[0], row[1]
        rev = target.revision(entry_id, digest)
        if rev is None or _digest_of(rev) != digest:
            bad.append(f"{entry_id} {digest[:12]}")
    if bad:
        raise RegistryError(f"{len(bad)} revision(s) differ from their digest after copying to {target.url}: "
                            + ", ".join(bad[:5]),
                            hint="the source registry may be damaged; check it with `flowctl registry show`")
    return len(rows.revisions)


def _digest_of(rev: Revision) -> str:
    """The digest ``rev``'s content gives, computed again (registry.revision.build_revisions' way)."""
    direct = {lib_id: rev.libraries[lib_id].digest for lib_id in set(rev.imports.values()) if lib_id in rev.libraries}
    return compute_digest(rev.entry_id, rev.data, rev.source, direct,
                          handler_path=rev.source_name if rev.kind == PYTHON_KIND else None)

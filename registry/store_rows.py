"""What the SQL stores (SQLite, PostgreSQL) share beyond their SQL: rows to revisions, the apply check.

Both keep the same tables (registry/sqlite_migrations.py, registry/postgres_migrations.py) and
must behave the same; the parts that do not depend on the database live here, once.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from registry.plan import PlannedChange
from registry.revision import Revision, load_data
from registry.store import EntryChange, RegistryConflict, RegistryError

#: Test-only: seconds to sleep after each entry written inside the apply transaction, so a
#: test can SIGKILL ``flowctl apply`` mid-transaction. Never set it in production.
APPLY_PAUSE_ENV = "FLOWCTL_TEST_APPLY_PAUSE"
#: What to do with a store that is damaged.
RESTORE_HINT = "restore it from a backup, or apply the entries to a new registry"
#: The columns ``revision_from_row`` reads, in order.
REVISION_COLUMNS = "entry_id, digest, kind, data_yaml, source, source_name, imports_json, libraries_json"


def utc_now() -> str:
    """ISO-8601 UTC now, to the millisecond, as every store records it."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def apply_pause_seconds() -> float:
    """Seconds from ``FLOWCTL_TEST_APPLY_PAUSE`` (0 when unset or not a number)."""
    try:
        return max(0.0, float(os.environ.get(APPLY_PAUSE_ENV) or 0))
    except ValueError:
        return 0.0


def revision_from_row(row: Sequence[Any], *, cached: Mapping[tuple[str, str], Revision],
                      lookup: Callable[[str, str], Revision | None], shown: str) -> Revision:
    """The Revision a ``REVISION_COLUMNS`` row stores, its libraries looked up (``lookup``) by digest."""
    entry_id, digest, kind, data_yaml, source, source_name, imports_json, libraries_json = row
    found = cached.get((entry_id, digest))
    if found is not None:
        return found
    libraries: dict[str, Revision] = {}
    for lib_id, lib_digest in json.loads(libraries_json).items():
        lib = lookup(lib_id, lib_digest)
        if lib is None:
            raise RegistryError(f"registry {shown} is damaged: revision {digest[:12]} of {entry_id} imports "
                                f"{lib_id} {lib_digest[:12]}, which is missing", hint=RESTORE_HINT)
        libraries[lib_id] = lib
        libraries.update(lib.libraries)
    return Revision(entry_id=entry_id, kind=kind, digest=digest, data=load_data(data_yaml), source=source,
                    source_name=source_name, imports=json.loads(imports_json), libraries=libraries)


def checked_changes(writes: Sequence[PlannedChange], now: Mapping[str, str]) -> list[EntryChange]:
    """What an apply still has to write, given the current digests ``now`` (read inside its transaction).

    An entry already at its planned revision is skipped (a concurrent apply wrote it); one at any other
    revision than the plan saw is a RegistryConflict naming every such entry.
    """
    changes: list[EntryChange] = []
    conflicts: list[str] = []
    for change in writes:
        expected = change.old.digest if change.old is not None else None
        target = change.new.digest if change.new is not None else None
        found = now.get(change.entry_id)
        if found == target:
            continue  # someone applied the same revision meanwhile: nothing left to do
        if found != expected:
            conflicts.append(f"{change.entry_id} (planned against {short(expected)}, now {short(found)})")
            continue
        changes.append(EntryChange(change.entry_id, str(change.action), target, expected))
    if conflicts:
        raise RegistryConflict("the registry changed since the plan was computed: " + ", ".join(conflicts),
                               hint="another apply or rollback ran meanwhile; run `flowctl diff` and apply again")
    return changes


def short(digest: str | None) -> str:
    """A digest as messages show it (``absent`` for none)."""
    return digest[:12] if digest else "absent"

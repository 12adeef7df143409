"""What the SQL stores (SQLite, PostgreSQL) share beyond their SQL: rows to revisions, the apply check.

Both keep the same tables (registry/sqlite_migrations.py, registry/postgres_migrations.py) and
must behave the same; the parts that do not depend on the database live here, once.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

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
                      fetch: Callable[[str, str], Sequence[Any] | None], remember: Callable[[Revision], None],
                      shown: str) -> Revision:
    """The Revision a ``REVISION_COLUMNS`` row stores, its libraries' rows read with ``fetch`` by digest.

    Walks the imported libraries with its own stack (a chain of any length reads), hands every
    revision it builds to ``remember`` (the store's cache), and reports a row it cannot read as
    a damaged registry.
    """
    found = cached.get((row[0], row[1]))
    if found is not None:  # revisions are immutable: a row read before needs no decoding
        return found
    first = _StoredRow.of(row, shown)
    built: dict[tuple[str, str], Revision] = {}
    chain = [first]
    while chain:
        top = chain[-1]
        missing = next((key for key in top.libraries.items() if key not in built and key not in cached), None)
        if missing is None:
            revision = top.revision({key: built.get(key) or cached[key] for key in top.libraries.items()})
            built[top.key] = revision
            remember(revision)
            chain.pop()
            continue
        if any(link.key == missing for link in chain):
            raise top.damaged(f"imports {missing[0]} {missing[1][:12]}, which imports it back")
        library_row = fetch(*missing)
        if library_row is None:
            raise top.damaged(f"imports {missing[0]} {missing[1][:12]}, which is missing")
        chain.append(_StoredRow.of(library_row, shown))
    return built[first.key]


@dataclass(frozen=True)
class _StoredRow:
    """One ``revisions`` row, its columns decoded and checked."""

    entry_id: str
    digest: str
    kind: str
    data: dict[str, Any]
    source: str | None
    source_name: str | None
    imports: dict[str, str]
    #: directly imported library entry ID -> digest
    libraries: dict[str, str]
    shown: str

    @property
    def key(self) -> tuple[str, str]:
        return self.entry_id, self.digest

    def damaged(self, problem: str) -> RegistryError:
        return RegistryError(f"registry {self.shown} is damaged: revision {str(self.digest)[:12]} of "
                             f"{self.entry_id} {problem}", hint=RESTORE_HINT)

    @classmethod
    def of(cls, row: Sequence[Any], shown: str) -> _StoredRow:
        entry_id, digest, kind, data_yaml, source, source_name, imports_json, libraries_json = row
        bare = cls(str(entry_id), str(digest), str(kind), {}, None, None, {}, {}, shown)
        return cls(bare.entry_id, bare.digest, bare.kind, _stored_data(bare, data_yaml), source, source_name,
                   _stored_names(bare, "imports_json", imports_json),
                   _stored_names(bare, "libraries_json", libraries_json), shown)

    def revision(self, libraries: Mapping[tuple[str, str], Revision]) -> Revision:
        closure: dict[str, Revision] = {}
        for lib in libraries.values():
            closure[lib.entry_id] = lib
            closure.update(lib.libraries)
        return Revision(entry_id=self.entry_id, kind=self.kind, digest=self.digest, data=self.data,
                        source=self.source, source_name=self.source_name, imports=self.imports,
                        libraries=closure)


def _stored_data(row: _StoredRow, text: Any) -> dict[str, Any]:
    """The ``data_yaml`` column: YAML text of a mapping."""
    try:
        data = load_data(text) if isinstance(text, str) else None
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as exc:
        raise row.damaged(f"has unreadable data_yaml ({str(exc).splitlines()[0] if str(exc) else exc})") from None
    if not data and (not isinstance(text, str) or text.strip() != "{}"):
        raise row.damaged("has unreadable data_yaml (not a YAML mapping)")
    return data or {}


def _stored_names(row: _StoredRow, column: str, text: Any) -> dict[str, str]:
    """An ``imports_json`` / ``libraries_json`` column: a JSON object of strings."""
    try:
        value = json.loads(text) if isinstance(text, str | bytes) else None
    except (ValueError, RecursionError) as exc:
        raise row.damaged(f"has unreadable {column} ({exc})") from None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise row.damaged(f"has unreadable {column} (not a JSON object of strings)")
    return value


def current_missing(shown: str, entry_id: str, digest: str) -> RegistryError:
    """A ``current`` row that names a revision the store does not hold."""
    return RegistryError(f"registry {shown} is damaged: the current revision of {entry_id} "
                         f"({digest[:12]}) is missing", hint=RESTORE_HINT)


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

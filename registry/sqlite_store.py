"""The embedded SQLite revision store (the default): one file, WAL mode, one transaction per write.

Writers take SQLite's write lock up front (``BEGIN IMMEDIATE``) and wait for it up to
``busy_timeout``, so two concurrent applies run one after the other; each then re-checks,
inside its transaction, that the entries it is about to change are still at the revisions
its plan saw. A process killed mid-apply leaves the transaction uncommitted: SQLite rolls
it back the next time the file is opened.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from registry.diagnostics import display_path
from registry.revision import Revision, dump_data
from registry.sqlite_migrations import APPLICATION_ID, LATEST_VERSION, MIGRATIONS
from registry.store import (
    ApplyEvent,
    EntryChange,
    QuarantinedRun,
    RegistryConflict,
    RegistryError,
    RegistryRows,
    RevisionInfo,
    RevisionStore,
    RunUpgrade,
    default_actor,
)
from registry.store_rows import (
    RESTORE_HINT,
    apply_pause_seconds,
    checked_changes,
    current_missing,
    revision_from_row,
    utc_now,
)

if TYPE_CHECKING:
    from registry.plan import Plan

#: How long a writer waits for another writer's lock before reporting the registry busy.
DEFAULT_BUSY_TIMEOUT = 30.0


#: the columns of quarantined_runs in QuarantinedRun's field order
_QUARANTINE_COLUMNS = "workflow_id, run_id, entry_id, reason, lua_where, activity_id, history_length, actor, at"


#: ``registry copy``: the rows of each table, in the column order of RegistryRows (portable SQL)
EXPORT_QUERIES = {
    "events": "SELECT id, verb, actor, at, note FROM events ORDER BY id",
    "revisions": "SELECT entry_id, digest, kind, data_yaml, source, source_name, imports_json, libraries_json, "
                 "event_id FROM revisions ORDER BY event_id, entry_id, digest",
    "current": "SELECT entry_id, digest, event_id FROM current ORDER BY entry_id",
    "event_changes": "SELECT event_id, entry_id, action, digest, previous_digest FROM event_changes "
                     "ORDER BY event_id, entry_id",
    "run_upgrades": "SELECT event_id, workflow_id, run_id, entry_id, digest, previous_digest FROM run_upgrades "
                    "ORDER BY event_id, workflow_id, run_id",
    "quarantined_runs": "SELECT workflow_id, run_id, activity_id, entry_id, reason, lua_where, history_length, "
                        "actor, at FROM quarantined_runs ORDER BY id",
}
#: ... and how each is inserted when absent (``%s`` placeholders; SQLite swaps them for ``?``)
IMPORT_STATEMENTS = {
    "events": "INSERT INTO events (id, verb, actor, at, note) VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
    "revisions": "INSERT INTO revisions (entry_id, digest, kind, data_yaml, source, source_name, imports_json, "
                 "libraries_json, event_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
    "current": "INSERT INTO current (entry_id, digest, event_id) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
    "event_changes": "INSERT INTO event_changes (event_id, entry_id, action, digest, previous_digest) "
                     "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
    "run_upgrades": "INSERT INTO run_upgrades (event_id, workflow_id, run_id, entry_id, digest, previous_digest) "
                    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
    "quarantined_runs": "INSERT INTO quarantined_runs (workflow_id, run_id, activity_id, entry_id, reason, "
                        "lua_where, history_length, actor, at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                        "ON CONFLICT DO NOTHING",
}


def _writable(path: Path) -> bool:
    """Whether this process may write the store file and create its -wal/-shm files next to it."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def _read_only_uri(path: Path) -> str:
    """An SQLite URI that opens ``path`` read-only (``immutable`` when no -wal/-shm can be made or used)."""
    uri = path.absolute().as_uri() + "?mode=ro"
    companions = [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm")]
    if not os.access(path.parent, os.W_OK) and not any(p.exists() for p in companions):
        uri += "&immutable=1"  # nothing can write a store in a read-only directory: nothing changes under us
    return uri


class SqliteRevisionStore(RevisionStore):
    """A registry in one SQLite file (or in memory when ``path`` is None)."""

    def __init__(self, path: Path | None, *, url: str | None = None, create: bool = True,
                 busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> None:
        self.path = path
        self.url = url or (str(path) if path else ":memory:")
        self.busy_timeout = busy_timeout
        self._lock = threading.RLock()  # one connection, shared by the worker's threads
        self._cache: dict[tuple[str, str], Revision] = {}  # revisions are immutable: cache forever
        self._conn = self._connect(create)
        try:
            self._prepare()
        except BaseException:
            self._conn.close()
            raise

    # -- opening ----------------------------------------------------------------------------

    def _connect(self, create: bool) -> sqlite3.Connection:
        target = ":memory:"
        if self.path is not None:
            try:
                self.path.stat()
            except FileNotFoundError:
                pass
            except OSError as exc:  # a NUL, a name over 255 bytes, a path through a file...
                raise RegistryError(f"cannot open registry {self._shown()}: {exc.strerror or exc}",
                                    hint="check the path given to --registry / FLOWCTL_REGISTRY") from exc
            if self.path.is_dir():
                raise RegistryError(f"registry path {self._shown()} is a directory",
                                    hint="point --registry at a file, e.g. .flowctl/registry.db")
            if self.path.exists() or create:
                target = str(self.path)
                if create:
                    try:
                        self.path.parent.mkdir(parents=True, exist_ok=True)
                    except OSError as exc:
                        raise RegistryError(f"cannot create the directory for registry {self._shown()}: "
                                            f"{exc.strerror or exc}",
                                            hint="check the path and its permissions") from exc
        read_only = self.path is not None and not create and target != ":memory:" and not _writable(self.path)
        if read_only and self.path is not None:  # read-only media or permissions: read it without writing
            target = _read_only_uri(self.path)
        try:
            # autocommit mode: transactions are begun explicitly, so their extent is visible here
            conn = sqlite3.connect(target, timeout=self.busy_timeout, isolation_level=None,
                                   check_same_thread=False, uri=read_only)
        except sqlite3.Error as exc:
            raise RegistryError(f"cannot open registry {self._shown()}: {exc}",
                                hint="check the path and its permissions") from exc
        return conn

    def _prepare(self) -> None:
        """Check that the file is a registry of a version we know; create or migrate it."""
        try:
            # one statement, one snapshot: read apart, another process creating the store could
            # commit in between, and a half-seen new registry would read as a foreign database
            app_id, tables = self._conn.execute(
                "SELECT (SELECT application_id FROM pragma_application_id()), "
                "(SELECT count(*) FROM sqlite_master)").fetchone()
        except sqlite3.DatabaseError as exc:
            if getattr(exc, "sqlite_errorname", "") != "SQLITE_NOTADB":
                self._sql_failed(exc)
            raise RegistryError(f"{self._shown()} is not a flowctl registry ({exc})",
                                hint="point --registry / FLOWCTL_REGISTRY at a registry file, or at a "
                                     "path that does not exist yet to create one") from exc
        if app_id != APPLICATION_ID and tables:
            raise RegistryError(f"{self._shown()} is an SQLite database but not a flowctl registry",
                                hint="point --registry / FLOWCTL_REGISTRY at a registry file, or at a "
                                     "path that does not exist yet to create one")
        self._sql("PRAGMA foreign_keys = ON")
        if self.path is not None and self.path.exists():
            # WAL: readers (workers) never block the writer and vice versa; persistent per file
            with contextlib.suppress(sqlite3.OperationalError):  # read-only media: keep its mode
                self._conn.execute("PRAGMA journal_mode = WAL")
            self._sql("PRAGMA synchronous = NORMAL")
        version = self._schema_version() if app_id == APPLICATION_ID else 0
        if version > LATEST_VERSION:
            raise RegistryError(
                f"registry {self._shown()} has schema version {version}, newer than this flowctl "
                f"understands (up to {LATEST_VERSION})",
                hint="upgrade flowctl (pip install -U flowctl) to use this registry")
        if version < LATEST_VERSION:
            self._migrate()

    def _schema_version(self) -> int:
        try:
            row = self._conn.execute("SELECT max(version) FROM schema_version").fetchone()
        except sqlite3.DatabaseError as exc:
            raise RegistryError(f"registry {self._shown()} is damaged: {exc}", hint=RESTORE_HINT) from exc
        return int(row[0] or 0)

    def _migrate(self) -> None:
        with self._write_transaction():
            app_id = self._sql("PRAGMA application_id").fetchone()[0]
            # another process may have created or upgraded the store while we waited for the lock
            version = self._schema_version() if app_id == APPLICATION_ID else 0
            for step in range(version + 1, LATEST_VERSION + 1):
                for statement in MIGRATIONS[step]:
                    self._sql(statement)
                if step == 1:
                    self._sql("INSERT INTO store_identity VALUES (?, ?)", (uuid.uuid4().hex, utc_now()))
                self._sql("DELETE FROM schema_version")
                self._sql("INSERT INTO schema_version VALUES (?)", (step,))
            self._sql(f"PRAGMA application_id = {APPLICATION_ID}")

    def _shown(self) -> str:
        return display_path(self.path) if self.path is not None else self.url

    # -- plumbing ---------------------------------------------------------------------------

    def _sql(self, statement: str, params: tuple[Any, ...] | list[Any] = ()) -> sqlite3.Cursor:
        try:
            return self._conn.execute(statement, params)
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.IntegrityError):
                raise
            self._sql_failed(exc)

    def _sql_failed(self, exc: sqlite3.DatabaseError) -> NoReturn:
        """Raise the RegistryError that says what an SQLite error means for the user."""
        if isinstance(exc, sqlite3.OperationalError):
            if "locked" in str(exc) or "busy" in str(exc):
                raise RegistryConflict(
                    f"registry {self._shown()} is locked by another writer (waited {self.busy_timeout:g} s)",
                    hint="another `flowctl apply` is running; retry when it has finished") from exc
            if "unable to open" in str(exc):
                raise RegistryError(f"cannot open registry {self._shown()}: {exc}",
                                    hint="check the permissions of the file and of its directory (SQLite "
                                         "keeps -wal/-shm files next to it)") from exc
            if "readonly" in str(exc) or "disk" in str(exc):
                raise RegistryError(f"cannot write registry {self._shown()}: {exc}",
                                    hint="check the file's and its directory's permissions and the free "
                                         "disk space") from exc
        if getattr(exc, "sqlite_errorname", "") in ("SQLITE_CORRUPT", "SQLITE_NOTADB"):
            raise RegistryError(f"registry {self._shown()} is damaged: {exc}", hint=RESTORE_HINT) from exc
        raise RegistryError(f"registry {self._shown()} cannot be used: {exc}", hint=RESTORE_HINT) from exc

    @contextlib.contextmanager
    def _write_transaction(self) -> Iterator[None]:
        """Hold SQLite's write lock from the start, so the checks made inside stay true until commit."""
        with self._lock:
            self._sql("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                if self._conn.in_transaction:  # SQLite may already have rolled back (e.g. disk full)
                    self._conn.execute("ROLLBACK")
                raise
            self._sql("COMMIT")

    # -- read API -----------------------------------------------------------------------------

    def current(self, entry_id: str) -> Revision | None:
        with self._lock:
            row = self._sql("SELECT digest FROM current WHERE entry_id = ?", (entry_id,)).fetchone()
        if row is None:
            return None
        found = self.revision(entry_id, row[0])
        if found is None:
            raise current_missing(self._shown(), entry_id, row[0])
        return found

    def revision(self, entry_id: str, digest: str) -> Revision | None:
        cached = self._cache.get((entry_id, digest))
        if cached is not None:
            return cached
        row = self._revision_row(entry_id, digest)
        return self._revision_from_row(row) if row else None

    def _revision_row(self, entry_id: str, digest: str) -> tuple[Any, ...] | None:
        with self._lock:
            return self._sql(
                "SELECT entry_id, digest, kind, data_yaml, source, source_name, imports_json, libraries_json "
                "FROM revisions WHERE entry_id = ? AND digest = ?", (entry_id, digest)).fetchone()

    def _revision_from_row(self, row: tuple[Any, ...]) -> Revision:
        return revision_from_row(row, cached=self._cache, fetch=self._revision_row, remember=self._remember,
                                 shown=self._shown())

    def _remember(self, rev: Revision) -> None:
        self._cache[(rev.entry_id, rev.digest)] = rev

    def list_current(self) -> list[Revision]:
        with self._lock:
            rows = self._sql(
                "SELECT r.entry_id, r.digest, r.kind, r.data_yaml, r.source, r.source_name, r.imports_json, "
                "r.libraries_json, c.entry_id, c.digest FROM current c LEFT JOIN revisions r "
                "ON r.entry_id = c.entry_id AND r.digest = c.digest ORDER BY c.entry_id").fetchall()
        missing = next((row[-2:] for row in rows if row[0] is None), None)
        if missing is not None:
            raise current_missing(self._shown(), *missing)
        return [self._revision_from_row(row[:-2]) for row in rows]

    def current_digests(self) -> dict[str, str]:
        with self._lock:
            return dict(self._sql("SELECT entry_id, digest FROM current").fetchall())

    def change_token(self) -> str:
        with self._lock:
            store_id, last, quarantined = self._sql(
                "SELECT (SELECT store_id FROM store_identity), (SELECT coalesce(max(id), 0) FROM events), "
                "(SELECT coalesce(max(id), 0) FROM quarantined_runs)").fetchone()
        # a quarantine is no event (no entry changed), but workers must notice it too
        return f"{store_id}:{last}" + (f":q{quarantined}" if quarantined else "")

    def revisions_of(self, entry_id: str) -> list[RevisionInfo]:
        with self._lock:
            rows = self._sql(
                "SELECT r.entry_id, r.kind, r.digest, r.event_id, e.at, c.digest IS NOT NULL "
                "FROM revisions r JOIN events e ON e.id = r.event_id "
                "LEFT JOIN current c ON c.entry_id = r.entry_id AND c.digest = r.digest "
                "WHERE r.entry_id = ? ORDER BY r.event_id, r.digest", (entry_id,)).fetchall()
        return [RevisionInfo(entry_id=r[0], kind=r[1], digest=r[2], event_id=r[3], at=r[4],
                             is_current=bool(r[5])) for r in rows]

    def history(self, entry_id: str | None = None, *, limit: int | None = None) -> list[ApplyEvent]:
        with self._lock:
            if entry_id is None:
                events = self._sql("SELECT id, verb, actor, at, note FROM events ORDER BY id DESC LIMIT ?",
                                   (limit if limit is not None else -1,)).fetchall()
            else:
                events = self._sql(
                    "SELECT e.id, e.verb, e.actor, e.at, e.note FROM events e WHERE e.id IN "
                    "(SELECT event_id FROM event_changes WHERE entry_id = ? "
                    "UNION SELECT event_id FROM run_upgrades WHERE entry_id = ?) ORDER BY e.id DESC LIMIT ?",
                    (entry_id, entry_id, limit if limit is not None else -1)).fetchall()
            only = " AND entry_id = ?" if entry_id is not None else ""
            result = []
            for event_id, verb, actor, at, note in events:
                params: tuple[Any, ...] = (event_id,) if entry_id is None else (event_id, entry_id)
                changes = tuple(EntryChange(*row) for row in self._sql(
                    "SELECT entry_id, action, digest, previous_digest FROM event_changes "
                    f"WHERE event_id = ?{only} ORDER BY entry_id", params))
                runs = tuple(RunUpgrade(*row) for row in self._sql(
                    "SELECT workflow_id, run_id, entry_id, digest, previous_digest FROM run_upgrades "
                    f"WHERE event_id = ?{only} ORDER BY workflow_id, run_id", params))
                result.append(ApplyEvent(id=event_id, verb=verb, actor=actor, at=at, changes=changes, note=note,
                                         runs=runs))
        return result

    def run_upgrades(self) -> dict[tuple[str, str], RunUpgrade]:
        with self._lock:
            rows = self._sql(
                "SELECT u.workflow_id, u.run_id, u.entry_id, u.digest, u.previous_digest FROM run_upgrades u "
                "WHERE u.event_id = (SELECT max(event_id) FROM run_upgrades l "
                "WHERE l.workflow_id = u.workflow_id AND l.run_id = u.run_id)").fetchall()
        return {(row[0], row[1]): RunUpgrade(*row) for row in rows}

    def quarantined_runs(self, workflow_id: str | None = None) -> list[QuarantinedRun]:
        where, params = ("WHERE workflow_id = ? ", (workflow_id,)) if workflow_id is not None else ("", ())
        with self._lock:
            rows = self._sql(f"SELECT {_QUARANTINE_COLUMNS} FROM quarantined_runs {where}ORDER BY id",
                             params).fetchall()
        return [QuarantinedRun(*row) for row in rows]

    # -- write API ------------------------------------------------------------------------------

    def apply(self, plan: Plan, *, actor: str | None = None, note: str = "") -> ApplyEvent | None:
        writes = plan.writes()
        if not writes:
            return None
        pause = apply_pause_seconds()
        with self._write_transaction():
            changes = checked_changes(writes, self._current_digests_in_transaction([c.entry_id for c in writes]))
            if not changes:
                return None
            event = self._record_event("apply", actor, changes, note)
            by_id = {c.entry_id: c for c in writes}
            stored: set[tuple[str, str]] = set()
            for done in changes:
                new = by_id[done.entry_id].new
                if new is not None:
                    self._store_revision(new, event.id, stored)
                self._set_current(done.entry_id, done.digest, event.id)
                if pause:
                    time.sleep(pause)
        return event

    def rollback(self, revision: Revision, *, actor: str | None = None) -> ApplyEvent | None:
        with self._write_transaction():
            stored = self._sql("SELECT 1 FROM revisions WHERE entry_id = ? AND digest = ?",
                               (revision.entry_id, revision.digest)).fetchone()
            if stored is None:
                raise RegistryError(f"{revision.entry_id} has no stored revision {revision.digest[:12]}",
                                    hint=f"`flowctl registry show {revision.entry_id}` lists its revisions")
            previous = self._current_digests_in_transaction([revision.entry_id]).get(revision.entry_id)
            if previous == revision.digest:
                return None
            action = "changed" if previous is not None else "created"
            change = EntryChange(revision.entry_id, action, revision.digest, previous)
            event = self._record_event("rollback", actor, [change])
            self._set_current(revision.entry_id, revision.digest, event.id)
        return event

    def upgrade_runs(self, upgrades: list[RunUpgrade], *, actor: str | None = None,
                     note: str = "") -> ApplyEvent:
        if not upgrades:
            raise RegistryError("no runs to upgrade", hint="name at least one run")
        with self._write_transaction():
            for move in upgrades:
                stored = self._sql("SELECT 1 FROM revisions WHERE entry_id = ? AND digest = ?",
                                   (move.entry_id, move.digest)).fetchone()
                if stored is None:
                    raise RegistryError(f"{move.entry_id} has no stored revision {move.digest[:12]}",
                                        hint=f"`flowctl registry show {move.entry_id}` lists its revisions")
            event = self._record_event("upgrade", actor, [], note)
            self._conn.executemany(
                "INSERT INTO run_upgrades (event_id, workflow_id, run_id, entry_id, digest, previous_digest) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(event.id, m.workflow_id, m.run_id, m.entry_id, m.digest, m.previous_digest) for m in upgrades])
        return ApplyEvent(id=event.id, verb=event.verb, actor=event.actor, at=event.at, changes=(), note=note,
                          runs=tuple(upgrades))

    def quarantine_run(self, *, workflow_id: str, run_id: str, entry_id: str, reason: str, where: str = "",
                       activity_id: str = "", history_length: int = 0,
                       actor: str | None = None) -> QuarantinedRun:
        key = (workflow_id, run_id, activity_id)
        with self._write_transaction():
            self._sql("INSERT OR IGNORE INTO quarantined_runs (workflow_id, run_id, activity_id, entry_id, reason, "
                      "lua_where, history_length, actor, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      (*key, entry_id, reason, where, history_length, actor or default_actor(), utc_now()))
            row = self._sql(f"SELECT {_QUARANTINE_COLUMNS} FROM quarantined_runs "
                            "WHERE workflow_id = ? AND run_id = ? AND activity_id = ?", key).fetchone()
        return QuarantinedRun(*row)

    def _current_digests_in_transaction(self, entry_ids: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for start in range(0, len(entry_ids), 500):  # stay under SQLite's bound-parameter limit
            chunk = entry_ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT entry_id, digest FROM current WHERE entry_id IN ({marks})"
            found.update(self._sql(query, chunk))
        return found

    def _record_event(self, verb: str, actor: str | None, changes: list[EntryChange],
                      note: str = "") -> ApplyEvent:
        who, at = actor or default_actor(), utc_now()
        cursor = self._sql("INSERT INTO events (verb, actor, at, note) VALUES (?, ?, ?, ?)", (verb, who, at, note))
        event_id = int(cursor.lastrowid or 0)
        self._conn.executemany(
            "INSERT INTO event_changes (event_id, entry_id, action, digest, previous_digest) "
            "VALUES (?, ?, ?, ?, ?)",
            [(event_id, c.entry_id, c.action, c.digest, c.previous_digest) for c in changes])
        return ApplyEvent(id=event_id, verb=verb, actor=who, at=at, changes=tuple(changes), note=note)

    def _store_revision(self, revision: Revision, event_id: int, stored: set[tuple[str, str]]) -> None:
        """Insert a revision and the library revisions it needs (already-stored ones are kept as is).

        ``stored``: the revisions this apply already wrote, skipped (a chain of imports stays linear).
        """
        for rev in (*revision.libraries.values(), revision):
            if (rev.entry_id, rev.digest) not in stored:
                stored.add((rev.entry_id, rev.digest))
                self._insert_revision(rev, event_id)

    def _insert_revision(self, rev: Revision, event_id: int) -> None:
        direct = {lib_id: rev.libraries[lib_id].digest for lib_id in sorted(set(rev.imports.values()))}
        self._sql(
            "INSERT OR IGNORE INTO revisions (entry_id, digest, kind, data_yaml, source, source_name, "
            "imports_json, libraries_json, event_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (rev.entry_id, rev.digest, rev.kind, dump_data(rev.data), rev.source, rev.source_name,
             json.dumps(rev.imports, sort_keys=True), json.dumps(direct, sort_keys=True), event_id))

    def _set_current(self, entry_id: str, digest: str | None, event_id: int) -> None:
        if digest is None:
            self._sql("DELETE FROM current WHERE entry_id = ?", (entry_id,))
        else:
            self._sql("INSERT INTO current (entry_id, digest, event_id) VALUES (?, ?, ?) "
                      "ON CONFLICT (entry_id) DO UPDATE "
                      "SET digest = excluded.digest, event_id = excluded.event_id",
                      (entry_id, digest, event_id))

    # -- copying ---------------------------------------------------------------------------------

    def export_rows(self) -> RegistryRows:
        with self._lock:
            self._sql("BEGIN")  # one snapshot for every table
            try:
                tables = {name: tuple(self._sql(query).fetchall()) for name, query in EXPORT_QUERIES.items()}
            finally:
                self._sql("COMMIT")
        return RegistryRows(**tables)

    def import_rows(self, rows: RegistryRows) -> None:
        with self._write_transaction():
            for name, statement in IMPORT_STATEMENTS.items():
                table = getattr(rows, name)
                if table:
                    self._conn.executemany(statement.replace("%s", "?"), table)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

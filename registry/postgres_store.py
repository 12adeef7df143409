"""The PostgreSQL revision store: one registry shared by workers on many hosts (psycopg 3, a pool).

The same guarantees as the SQLite store (registry.sqlite_store), by the database's own means:

- revisions, upgrade and quarantine records are immutable: row triggers refuse UPDATE and
  DELETE (and TRUNCATE) whoever sends them (registry.postgres_migrations);
- writers serialise on a transaction-level advisory lock, then re-check inside their
  transaction that the entries they change are still at the revisions their plan saw; a
  writer killed mid-apply leaves an uncommitted transaction that the server rolls back;
- every write ends with ``NOTIFY flowctl_registry`` (delivered on commit), which workers
  ``LISTEN`` for (``change_feed``) instead of polling.

The URL never carries a literal password: it comes from ``${env:NAME}`` in the URL,
``PGPASSWORD``, ``~/.pgpass`` or a libpq service file; the URL shown in messages masks it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool, PoolTimeout

from registry.postgres_migrations import CHANNEL, LATEST_VERSION, MIGRATION_LOCK, MIGRATIONS, SCHEMA, WRITE_LOCK
from registry.revision import Revision, dump_data
from registry.sqlite_store import EXPORT_QUERIES, IMPORT_STATEMENTS
from registry.store import (
    ApplyEvent,
    EntryChange,
    QuarantinedRun,
    RegistryConflict,
    RegistryError,
    RegistryRows,
    RegistryUnavailable,
    RevisionInfo,
    RevisionStore,
    RunUpgrade,
    default_actor,
)
from registry.store_rows import apply_pause_seconds, checked_changes, current_missing, revision_from_row, utc_now

if TYPE_CHECKING:
    from registry.plan import Plan

__all__ = ["PostgresChangeFeed", "PostgresRevisionStore", "connection_target"]

#: Seconds a call waits for a pooled connection (or a new one) before the registry counts as unavailable.
DEFAULT_TIMEOUT = 5.0
#: Seconds a writer waits for another writer's lock before reporting the registry busy (as SQLite's).
WRITE_LOCK_TIMEOUT = 30.0
_ENV_REFERENCE = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
_PASSWORD_HINT = ("leave the password out of the URL: set PGPASSWORD, use ~/.pgpass or a libpq service file, "
                  "or write ${env:NAME} in its place")
_QUARANTINE_COLUMNS = "workflow_id, run_id, entry_id, reason, lua_where, activity_id, history_length, actor, at"
_TOKEN_QUERY = ("SELECT (SELECT store_id FROM store_identity), (SELECT coalesce(max(id), 0) FROM events), "
                "(SELECT coalesce(max(id), 0) FROM quarantined_runs)")


def connection_target(url: str) -> tuple[str, str]:
    """``(conninfo for libpq, the URL as shown)`` for a ``postgresql://`` URL.

    ``${env:NAME}`` references are replaced by the variable's value (URL-quoted); a literal
    password in the URL is refused, so none ends up in shell history, process lists or logs.
    """
    if "${" in _ENV_REFERENCE.sub("", url):
        raise RegistryError(f"registry URL {url!r} has a malformed ${{env:…}} reference",
                            hint="write ${env:NAME} with NAME an environment variable name")
    parts = urlsplit(_ENV_REFERENCE.sub("env", url))
    if parts.password not in (None, "env") or re.search(r"(^|&)password=(?!\$\{env:)", parts.query):
        raise RegistryError("the registry URL carries a literal password", hint=_PASSWORD_HINT)

    def resolve(match: re.Match[str]) -> str:
        value = os.environ.get(match.group(1))
        if value is None:
            raise RegistryError(f"the registry URL refers to ${{env:{match.group(1)}}}, which is not set",
                                hint=f"export {match.group(1)} or take it out of --registry / FLOWCTL_REGISTRY")
        return quote(value, safe="")

    shown = _ENV_REFERENCE.sub("***", url)
    return _ENV_REFERENCE.sub(resolve, url), shown


def _unavailable(shown: str, error: BaseException) -> RegistryUnavailable:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return RegistryUnavailable(f"cannot reach registry {shown}: {text}",
                               hint="check that the PostgreSQL server is up and reachable, the URL's host, port "
                                    "and database, and the role's password (PGPASSWORD, ~/.pgpass)")


class PostgresRevisionStore(RevisionStore):
    """A registry in the ``flowctl`` schema of a PostgreSQL database."""

    def __init__(self, url: str, *, create: bool = True, timeout: float = DEFAULT_TIMEOUT,
                 max_connections: int = 4) -> None:
        self.conninfo, self.url = connection_target(url)
        self.timeout = timeout
        self._cache: dict[tuple[str, str], Revision] = {}  # revisions are immutable: cache forever
        self._cache_lock = threading.Lock()
        try:  # one direct connection first: its error says what is wrong (a pool only times out)
            psycopg.connect(self.conninfo, connect_timeout=max(1, round(timeout * 2))).close()
        except psycopg.Error as exc:
            raise _unavailable(self.url, exc) from None
        self._pool = ConnectionPool(self.conninfo, min_size=1, max_size=max_connections, open=False,
                                    configure=_configure, check=ConnectionPool.check_connection,
                                    kwargs={"connect_timeout": max(1, round(timeout))}, name="flowctl-registry")
        self._pool.open(wait=False)
        try:
            self._prepare(create)
        except BaseException:
            self._pool.close()
            raise

    # -- opening ----------------------------------------------------------------------------

    def _prepare(self, create: bool) -> None:
        with self._read() as cur:
            version = self._version(cur)
        if version > LATEST_VERSION:
            raise RegistryError(
                f"registry {self.url} has schema version {version}, newer than this flowctl understands "
                f"(up to {LATEST_VERSION})", hint="upgrade flowctl (pip install -U flowctl) to use this registry")
        if version < LATEST_VERSION:
            self._migrate(create)

    @staticmethod
    def _version(cur: psycopg.Cursor[Any]) -> int:
        # a plain query of pg_class (not to_regclass, whose cache may not yet see a table another
        # migrating process just committed while this one waited for the migration lock)
        cur.execute("SELECT count(*) > 0 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
                    "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = 'schema_version'", (SCHEMA,))
        row = cur.fetchone()
        if not row or not row[0]:
            return 0
        cur.execute(f"SELECT max(version) FROM {SCHEMA}.schema_version")
        found = cur.fetchone()
        return int(found[0] or 0) if found else 0

    def _migrate(self, create: bool) -> None:
        try:
            with self._transaction() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
                version = self._version(cur)  # another process may have migrated while we waited
                for step in range(version + 1, LATEST_VERSION + 1):
                    for statement in MIGRATIONS[step]:
                        cur.execute(statement)  # our own constant SQL
                    if step == 1:
                        cur.execute(f"INSERT INTO {SCHEMA}.store_identity VALUES (%s, %s)",
                                    (uuid.uuid4().hex, utc_now()))
                    cur.execute(f"DELETE FROM {SCHEMA}.schema_version")
                    cur.execute(f"INSERT INTO {SCHEMA}.schema_version VALUES (%s)", (step,))
        except RegistryError as exc:
            if "permission" in exc.message or "must be owner" in exc.message:
                state = "has no registry yet" if not create else "needs its schema created or upgraded"
                raise RegistryError(f"registry {self.url} {state}, and this role may not change it ({exc.message})",
                                    hint="run `flowctl apply` once with the role that owns the database; "
                                         "workers can then use a read-only role") from None
            raise

    # -- plumbing ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[psycopg.Cursor[Any]]:
        """One transaction on a pooled connection; database errors become registry errors."""
        try:
            with self._pool.connection(timeout=self.timeout) as conn, conn.transaction(), conn.cursor() as cur:
                yield cur
        except PoolTimeout as exc:
            raise _unavailable(self.url, exc) from None
        except pg_errors.LockNotAvailable as exc:
            raise RegistryConflict(
                f"registry {self.url} is locked by another writer (waited {WRITE_LOCK_TIMEOUT:g} s)",
                hint="another `flowctl apply` is running; retry when it has finished") from exc
        except pg_errors.InsufficientPrivilege as exc:
            raise RegistryError(f"cannot write registry {self.url}: permission denied ({_first_line(exc)})",
                                hint="this role is read-only (enough for workers); apply with a role that may "
                                     "write the flowctl schema") from None
        except psycopg.OperationalError as exc:
            raise _unavailable(self.url, exc) from None
        except psycopg.IntegrityError:
            raise
        except psycopg.Error as exc:
            raise RegistryError(f"registry {self.url} cannot be used: {_first_line(exc)}",
                                hint="check the database with its owner; restore it from a backup if it is damaged"
                                ) from exc

    _read = _transaction

    @contextlib.contextmanager
    def _write(self) -> Iterator[psycopg.Cursor[Any]]:
        """A write transaction: one writer at a time, and a notice to listening workers on commit."""
        with self._transaction() as cur:
            cur.execute(f"SET LOCAL lock_timeout = '{int(WRITE_LOCK_TIMEOUT * 1000)}ms'")
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            yield cur
            cur.execute(_TOKEN_QUERY)
            cur.execute("SELECT pg_notify(%s, %s)", (CHANNEL, _token(cur.fetchone())))

    # -- read API -----------------------------------------------------------------------------

    def current(self, entry_id: str) -> Revision | None:
        with self._read() as cur:
            cur.execute("SELECT digest FROM current WHERE entry_id = %s", (entry_id,))
            row = cur.fetchone()
        if row is None:
            return None
        found = self.revision(entry_id, row[0])
        if found is None:
            raise current_missing(self.url, entry_id, row[0])
        return found

    def revision(self, entry_id: str, digest: str) -> Revision | None:
        cached = self._cache.get((entry_id, digest))
        if cached is not None:
            return cached
        row = self._revision_row(entry_id, digest)
        return self._revision_from_row(row) if row else None

    def _revision_row(self, entry_id: str, digest: str) -> tuple[Any, ...] | None:
        with self._read() as cur:
            cur.execute("SELECT entry_id, digest, kind, data_yaml, source, source_name, imports_json, "
                        "libraries_json FROM revisions WHERE entry_id = %s AND digest = %s", (entry_id, digest))
            return cur.fetchone()

    def _revision_from_row(self, row: tuple[Any, ...]) -> Revision:
        return revision_from_row(row, cached=self._cache, fetch=self._revision_row, remember=self._remember,
                                 shown=self.url)

    def _remember(self, rev: Revision) -> None:
        with self._cache_lock:
            self._cache[(rev.entry_id, rev.digest)] = rev

    def list_current(self) -> list[Revision]:
        with self._read() as cur:
            cur.execute("SELECT r.entry_id, r.digest, r.kind, r.data_yaml, r.source, r.source_name, r.imports_json, "
                        "r.libraries_json, c.entry_id, c.digest FROM current c LEFT JOIN revisions r "
                        "ON r.entry_id = c.entry_id AND r.digest = c.digest ORDER BY c.entry_id")
            rows = cur.fetchall()
        missing = next((row[-2:] for row in rows if row[0] is None), None)
        if missing is not None:
            raise current_missing(self.url, *missing)
        return [self._revision_from_row(row[:-2]) for row in rows]

    def current_digests(self) -> dict[str, str]:
        with self._read() as cur:
            cur.execute("SELECT entry_id, digest FROM current")
            return dict(cur.fetchall())

    def change_token(self) -> str:
        with self._read() as cur:
            cur.execute(_TOKEN_QUERY)
            return _token(cur.fetchone())

    def revisions_of(self, entry_id: str) -> list[RevisionInfo]:
        with self._read() as cur:
            cur.execute("SELECT r.entry_id, r.kind, r.digest, r.event_id, e.at, c.digest IS NOT NULL "
                        "FROM revisions r JOIN events e ON e.id = r.event_id "
                        "LEFT JOIN current c ON c.entry_id = r.entry_id AND c.digest = r.digest "
                        "WHERE r.entry_id = %s ORDER BY r.event_id, r.digest", (entry_id,))
            rows = cur.fetchall()
        return [RevisionInfo(entry_id=r[0], kind=r[1], digest=r[2], event_id=r[3], at=r[4], is_current=bool(r[5]))
                for r in rows]

    def history(self, entry_id: str | None = None, *, limit: int | None = None) -> list[ApplyEvent]:
        with self._read() as cur:
            if entry_id is None:
                cur.execute("SELECT id, verb, actor, at, note FROM events ORDER BY id DESC LIMIT %s", (limit,))
            else:
                cur.execute("SELECT e.id, e.verb, e.actor, e.at, e.note FROM events e WHERE e.id IN "
                            "(SELECT event_id FROM event_changes WHERE entry_id = %s "
                            "UNION SELECT event_id FROM run_upgrades WHERE entry_id = %s) ORDER BY e.id DESC LIMIT %s",
                            (entry_id, entry_id, limit))
            events = cur.fetchall()
            ids = [row[0] for row in events]
            only = " AND entry_id = %s" if entry_id is not None else ""
            extra: tuple[Any, ...] = (entry_id,) if entry_id is not None else ()
            cur.execute("SELECT event_id, entry_id, action, digest, previous_digest FROM event_changes "
                        f"WHERE event_id = ANY(%s){only} ORDER BY event_id, entry_id", (ids, *extra))
            changes: dict[int, list[EntryChange]] = {}
            for event_id, *change in cur.fetchall():
                changes.setdefault(event_id, []).append(EntryChange(*change))
            cur.execute("SELECT event_id, workflow_id, run_id, entry_id, digest, previous_digest FROM run_upgrades "
                        f"WHERE event_id = ANY(%s){only} ORDER BY event_id, workflow_id, run_id", (ids, *extra))
            runs: dict[int, list[RunUpgrade]] = {}
            for event_id, *run in cur.fetchall():
                runs.setdefault(event_id, []).append(RunUpgrade(*run))
        return [ApplyEvent(id=event_id, verb=verb, actor=actor, at=at, note=note,
                           changes=tuple(changes.get(event_id, ())), runs=tuple(runs.get(event_id, ())))
                for event_id, verb, actor, at, note in events]

    def run_upgrades(self) -> dict[tuple[str, str], RunUpgrade]:
        with self._read() as cur:
            cur.execute("SELECT DISTINCT ON (workflow_id, run_id) workflow_id, run_id, entry_id, digest, "
                        "previous_digest FROM run_upgrades ORDER BY workflow_id, run_id, event_id DESC")
            rows = cur.fetchall()
        return {(row[0], row[1]): RunUpgrade(*row) for row in rows}

    def quarantined_runs(self, workflow_id: str | None = None) -> list[QuarantinedRun]:
        where, params = ("WHERE workflow_id = %s ", (workflow_id,)) if workflow_id is not None else ("", ())
        with self._read() as cur:
            cur.execute(f"SELECT {_QUARANTINE_COLUMNS} FROM quarantined_runs {where}ORDER BY id",
                        params)
            rows = cur.fetchall()
        return [QuarantinedRun(*row) for row in rows]

    # -- write API ------------------------------------------------------------------------------

    def apply(self, plan: Plan, *, actor: str | None = None, note: str = "") -> ApplyEvent | None:
        writes = plan.writes()
        if not writes:
            return None
        pause = apply_pause_seconds()
        with self._write() as cur:
            changes = checked_changes(writes, self._current_digests(cur, [c.entry_id for c in writes]))
            if not changes:
                return None
            event = self._record_event(cur, "apply", actor, changes, note)
            by_id = {c.entry_id: c for c in writes}
            stored: set[tuple[str, str]] = set()  # written by this apply (a chain of imports stays linear)
            for done in changes:
                new = by_id[done.entry_id].new
                if new is not None:
                    for rev in (*new.libraries.values(), new):
                        if (rev.entry_id, rev.digest) not in stored:
                            stored.add((rev.entry_id, rev.digest))
                            self._insert_revision(cur, rev, event.id)
                self._set_current(cur, done.entry_id, done.digest, event.id)
                if pause:
                    time.sleep(pause)
        return event

    def rollback(self, revision: Revision, *, actor: str | None = None) -> ApplyEvent | None:
        with self._write() as cur:
            cur.execute("SELECT 1 FROM revisions WHERE entry_id = %s AND digest = %s",
                        (revision.entry_id, revision.digest))
            if cur.fetchone() is None:
                raise RegistryError(f"{revision.entry_id} has no stored revision {revision.digest[:12]}",
                                    hint=f"`flowctl registry show {revision.entry_id}` lists its revisions")
            previous = self._current_digests(cur, [revision.entry_id]).get(revision.entry_id)
            if previous == revision.digest:
                return None
            action = "changed" if previous is not None else "created"
            change = EntryChange(revision.entry_id, action, revision.digest, previous)
            event = self._record_event(cur, "rollback", actor, [change])
            self._set_current(cur, revision.entry_id, revision.digest, event.id)
        return event

    def upgrade_runs(self, upgrades: list[RunUpgrade], *, actor: str | None = None, note: str = "") -> ApplyEvent:
        if not upgrades:
            raise RegistryError("no runs to upgrade", hint="name at least one run")
        with self._write() as cur:
            for move in upgrades:
                cur.execute("SELECT 1 FROM revisions WHERE entry_id = %s AND digest = %s", (move.entry_id, move.digest))
                if cur.fetchone() is None:
                    raise RegistryError(f"{move.entry_id} has no stored revision {move.digest[:12]}",
                                        hint=f"`flowctl registry show {move.entry_id}` lists its revisions")
            event = self._record_event(cur, "upgrade", actor, [], note)
            cur.executemany("INSERT INTO run_upgrades (event_id, workflow_id, run_id, entry_id, digest, "
                            "previous_digest) VALUES (%s, %s, %s, %s, %s, %s)",
                            [(event.id, m.workflow_id, m.run_id, m.entry_id, m.digest, m.previous_digest)
                             for m in upgrades])
        return ApplyEvent(id=event.id, verb=event.verb, actor=event.actor, at=event.at, changes=(), note=note,
                          runs=tuple(upgrades))

    def quarantine_run(self, *, workflow_id: str, run_id: str, entry_id: str, reason: str, where: str = "",
                       activity_id: str = "", history_length: int = 0,
                       actor: str | None = None) -> QuarantinedRun:
        key = (workflow_id, run_id, activity_id)
        with self._write() as cur:
            cur.execute("INSERT INTO quarantined_runs (workflow_id, run_id, activity_id, entry_id, reason, lua_where, "
                        "history_length, actor, at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                        "ON CONFLICT DO NOTHING",
                        (*key, entry_id, reason, where, history_length, actor or default_actor(), utc_now()))
            cur.execute(f"SELECT {_QUARANTINE_COLUMNS} FROM quarantined_runs "
                        "WHERE workflow_id = %s AND run_id = %s AND activity_id = %s", key)
            row = cur.fetchone()
        assert row is not None
        return QuarantinedRun(*row)

    @staticmethod
    def _current_digests(cur: psycopg.Cursor[Any], entry_ids: list[str]) -> dict[str, str]:
        cur.execute("SELECT entry_id, digest FROM current WHERE entry_id = ANY(%s)", (entry_ids,))
        return dict(cur.fetchall())

    @staticmethod
    def _record_event(cur: psycopg.Cursor[Any], verb: str, actor: str | None, changes: list[EntryChange],
                      note: str = "") -> ApplyEvent:
        who, at = actor or default_actor(), utc_now()
        cur.execute("INSERT INTO events (verb, actor, at, note) VALUES (%s, %s, %s, %s) RETURNING id",
                    (verb, who, at, note))
        row = cur.fetchone()
        assert row is not None
        event_id = int(row[0])
        cur.executemany("INSERT INTO event_changes (event_id, entry_id, action, digest, previous_digest) "
                        "VALUES (%s, %s, %s, %s, %s)",
                        [(event_id, c.entry_id, c.action, c.digest, c.previous_digest) for c in changes])
        return ApplyEvent(id=event_id, verb=verb, actor=who, at=at, changes=tuple(changes), note=note)

    @staticmethod
    def _insert_revision(cur: psycopg.Cursor[Any], rev: Revision, event_id: int) -> None:
        direct = {lib_id: rev.libraries[lib_id].digest for lib_id in sorted(set(rev.imports.values()))}
        cur.execute("INSERT INTO revisions (entry_id, digest, kind, data_yaml, source, source_name, imports_json, "
                    "libraries_json, event_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    (rev.entry_id, rev.digest, rev.kind, dump_data(rev.data), rev.source, rev.source_name,
                     json.dumps(rev.imports, sort_keys=True), json.dumps(direct, sort_keys=True), event_id))

    @staticmethod
    def _set_current(cur: psycopg.Cursor[Any], entry_id: str, digest: str | None, event_id: int) -> None:
        if digest is None:
            cur.execute("DELETE FROM current WHERE entry_id = %s", (entry_id,))
        else:
            cur.execute("INSERT INTO current (entry_id, digest, event_id) VALUES (%s, %s, %s) "
                        "ON CONFLICT (entry_id) DO UPDATE SET digest = excluded.digest, event_id = excluded.event_id",
                        (entry_id, digest, event_id))

    # -- change notices and copying ---------------------------------------------------------------

    def change_feed(self) -> PostgresChangeFeed:
        return PostgresChangeFeed(self.conninfo, self.url, timeout=self.timeout)

    def export_rows(self) -> RegistryRows:
        with self._read() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")  # one snapshot for every table
            tables = {}
            for name, query in EXPORT_QUERIES.items():
                cur.execute(query)  # our own constant SQL
                tables[name] = tuple(tuple(row) for row in cur.fetchall())
        return RegistryRows(**tables)

    def import_rows(self, rows: RegistryRows) -> None:
        with self._write() as cur:
            for name, statement in IMPORT_STATEMENTS.items():
                table = getattr(rows, name)
                if table:
                    cur.executemany(statement, table)  # our own constant SQL
            for table in ("events", "quarantined_runs"):  # the next write continues after the copied IDs
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{SCHEMA}.{table}', 'id'), "
                            f"coalesce(max(id), 1), max(id) IS NOT NULL) FROM {table}")

    def close(self) -> None:
        self._pool.close()


class PostgresChangeFeed:
    """``LISTEN flowctl_registry`` on a connection of its own (a ChangeFeed)."""

    def __init__(self, conninfo: str, shown: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.shown = shown
        try:
            self._conn = psycopg.connect(conninfo, autocommit=True, connect_timeout=max(1, round(timeout)))
            self._conn.execute(f"LISTEN {CHANNEL}")
        except psycopg.Error as exc:
            raise _unavailable(shown, exc) from None

    def wait(self, timeout: float) -> bool:
        try:
            for _ in self._conn.notifies(timeout=timeout, stop_after=1):
                return True
        except psycopg.Error as exc:
            raise _unavailable(self.shown, exc) from None
        if self._conn.closed or self._conn.broken:
            raise RegistryUnavailable(f"lost the connection to registry {self.shown}")
        return False

    def close(self) -> None:
        with contextlib.suppress(psycopg.Error):
            self._conn.close()


def _configure(conn: psycopg.Connection[Any]) -> None:
    """Every pooled connection reads and writes the flowctl schema by default."""
    conn.execute(f"SET search_path TO {SCHEMA}")
    conn.commit()


def _token(row: tuple[Any, ...] | None) -> str:
    assert row is not None
    store_id, last, quarantined = row
    # a quarantine is no event (no entry changed), but workers must notice it too
    return f"{store_id}:{last}" + (f":q{quarantined}" if quarantined else "")


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]

"""Versioned schema of the PostgreSQL registry: the same tables and versions as the SQLite one.

Every object lives in the ``flowctl`` schema of the database the URL names, so the registry
can share a database with other applications and roles are granted per schema
(docs/operations.md "Running a fleet"). Opening runs the missing steps in one transaction
under an advisory lock, so several workers starting at once migrate exactly once. Never
edit a released step: add a new one, with the same number as its SQLite counterpart.
"""

from __future__ import annotations

#: The schema holding every registry table.
SCHEMA = "flowctl"
#: ``pg_advisory_xact_lock`` key of migrations (ASCII "Flow" + 1) and of writers ("Flow" + 2).
MIGRATION_LOCK = 0x466C6F7701
WRITE_LOCK = 0x466C6F7702
#: ``NOTIFY`` channel every write signals on commit (the payload is the new change token).
CHANNEL = "flowctl_registry"

_IMMUTABLE = """CREATE FUNCTION flowctl.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'flowctl %', TG_ARGV[0] USING ERRCODE = 'integrity_constraint_violation';
END $$"""

MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "CREATE SCHEMA IF NOT EXISTS flowctl",
        "CREATE TABLE flowctl.schema_version (version INTEGER NOT NULL)",
        "CREATE TABLE flowctl.store_identity (store_id TEXT NOT NULL, created_at TEXT NOT NULL)",
        """CREATE TABLE flowctl.events (
               id BIGSERIAL PRIMARY KEY,
               verb TEXT NOT NULL,
               actor TEXT NOT NULL,
               at TEXT NOT NULL
           )""",
        # One row per revision, never updated or deleted (the triggers below enforce it).
        """CREATE TABLE flowctl.revisions (
               entry_id TEXT NOT NULL,
               digest TEXT NOT NULL,
               kind TEXT NOT NULL,
               data_yaml TEXT NOT NULL,
               source TEXT,
               source_name TEXT,
               imports_json TEXT NOT NULL,
               libraries_json TEXT NOT NULL,
               event_id BIGINT NOT NULL REFERENCES flowctl.events(id),
               PRIMARY KEY (entry_id, digest)
           )""",
        _IMMUTABLE,
        """CREATE TRIGGER revisions_are_immutable BEFORE UPDATE ON flowctl.revisions
           FOR EACH ROW EXECUTE FUNCTION flowctl.refuse_change('revisions are immutable')""",
        """CREATE TRIGGER revisions_are_kept BEFORE DELETE ON flowctl.revisions
           FOR EACH ROW EXECUTE FUNCTION flowctl.refuse_change('revisions are never deleted')""",
        # TRUNCATE skips row triggers: refuse it separately
        """CREATE TRIGGER revisions_are_not_truncated BEFORE TRUNCATE ON flowctl.revisions
           FOR EACH STATEMENT EXECUTE FUNCTION flowctl.refuse_change('revisions are never deleted')""",
        """CREATE TABLE flowctl.current (
               entry_id TEXT PRIMARY KEY,
               digest TEXT NOT NULL,
               event_id BIGINT NOT NULL REFERENCES flowctl.events(id),
               FOREIGN KEY (entry_id, digest) REFERENCES flowctl.revisions(entry_id, digest)
           )""",
        """CREATE TABLE flowctl.event_changes (
               event_id BIGINT NOT NULL REFERENCES flowctl.events(id),
               entry_id TEXT NOT NULL,
               action TEXT NOT NULL CHECK (action IN ('created', 'changed', 'deleted')),
               digest TEXT,
               previous_digest TEXT,
               PRIMARY KEY (event_id, entry_id)
           )""",
        "CREATE INDEX event_changes_by_entry ON flowctl.event_changes(entry_id, event_id)",
    ),
    2: (
        "ALTER TABLE flowctl.events ADD COLUMN note TEXT NOT NULL DEFAULT ''",
        """CREATE TABLE flowctl.run_upgrades (
               event_id BIGINT NOT NULL REFERENCES flowctl.events(id),
               workflow_id TEXT NOT NULL,
               run_id TEXT NOT NULL,
               entry_id TEXT NOT NULL,
               digest TEXT NOT NULL,
               previous_digest TEXT,
               PRIMARY KEY (event_id, workflow_id, run_id),
               FOREIGN KEY (entry_id, digest) REFERENCES flowctl.revisions(entry_id, digest)
           )""",
        "CREATE INDEX run_upgrades_by_run ON flowctl.run_upgrades(workflow_id, run_id, event_id)",
        "CREATE INDEX run_upgrades_by_entry ON flowctl.run_upgrades(entry_id, event_id)",
        """CREATE TRIGGER run_upgrades_are_immutable BEFORE UPDATE ON flowctl.run_upgrades
           FOR EACH ROW EXECUTE FUNCTION flowctl.refuse_change('upgrade records are immutable')""",
    ),
    3: (
        """CREATE TABLE flowctl.quarantined_runs (
               id BIGSERIAL PRIMARY KEY,
               workflow_id TEXT NOT NULL,
               run_id TEXT NOT NULL,
               activity_id TEXT NOT NULL DEFAULT '',
               entry_id TEXT NOT NULL,
               reason TEXT NOT NULL,
               lua_where TEXT NOT NULL DEFAULT '',
               history_length INTEGER NOT NULL DEFAULT 0,
               actor TEXT NOT NULL,
               at TEXT NOT NULL,
               UNIQUE (workflow_id, run_id, activity_id)
           )""",
        """CREATE TRIGGER quarantined_runs_are_immutable BEFORE UPDATE ON flowctl.quarantined_runs
           FOR EACH ROW EXECUTE FUNCTION flowctl.refuse_change('quarantine records are immutable')""",
    ),
}

LATEST_VERSION = max(MIGRATIONS)

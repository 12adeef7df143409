"""Versioned schema of the SQLite registry: each migration moves the store up one version.

A store records its version in ``schema_version``; opening runs the missing steps in one
transaction, so later releases upgrade a store in place. Never edit a released step:
add a new one.
"""

from __future__ import annotations

#: ``PRAGMA application_id`` of a flowctl registry (ASCII "Flow"): tells our files from other SQLite files.
APPLICATION_ID = 0x466C6F77

MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE schema_version (version INTEGER NOT NULL)""",
        """CREATE TABLE store_identity (store_id TEXT NOT NULL, created_at TEXT NOT NULL)""",
        """CREATE TABLE events (
               id INTEGER PRIMARY KEY AUTOINCREMENT,
               verb TEXT NOT NULL,
               actor TEXT NOT NULL,
               at TEXT NOT NULL
           )""",
        # One row per revision, never updated or deleted (the triggers below enforce it).
        """CREATE TABLE revisions (
               entry_id TEXT NOT NULL,
               digest TEXT NOT NULL,
               kind TEXT NOT NULL,
               data_yaml TEXT NOT NULL,
               source TEXT,
               source_name TEXT,
               imports_json TEXT NOT NULL,
               libraries_json TEXT NOT NULL,
               event_id INTEGER NOT NULL REFERENCES events(id),
               PRIMARY KEY (entry_id, digest)
           ) WITHOUT ROWID""",
        """CREATE TRIGGER revisions_are_immutable BEFORE UPDATE ON revisions
           BEGIN SELECT RAISE(ABORT, 'flowctl revisions are immutable'); END""",
        """CREATE TRIGGER revisions_are_kept BEFORE DELETE ON revisions
           BEGIN SELECT RAISE(ABORT, 'flowctl revisions are never deleted'); END""",
        """CREATE TABLE current (
               entry_id TEXT PRIMARY KEY,
               digest TEXT NOT NULL,
               event_id INTEGER NOT NULL REFERENCES events(id),
               FOREIGN KEY (entry_id, digest) REFERENCES revisions(entry_id, digest)
           ) WITHOUT ROWID""",
        """CREATE TABLE event_changes (
               event_id INTEGER NOT NULL REFERENCES events(id),
               entry_id TEXT NOT NULL,
               action TEXT NOT NULL CHECK (action IN ('created', 'changed', 'deleted')),
               digest TEXT,
               previous_digest TEXT,
               PRIMARY KEY (event_id, entry_id)
           ) WITHOUT ROWID""",
        """CREATE INDEX event_changes_by_entry ON event_changes(entry_id, event_id)""",
    ),
    2: (
        # why an apply skipped its replay gate, or what the gate checked (shown by `registry history`)
        """ALTER TABLE events ADD COLUMN note TEXT NOT NULL DEFAULT ''""",
        # `flowctl upgrade`: a run moved to another revision of its entry; the newest row per run wins.
        """CREATE TABLE run_upgrades (
               event_id INTEGER NOT NULL REFERENCES events(id),
               workflow_id TEXT NOT NULL,
               run_id TEXT NOT NULL,
               entry_id TEXT NOT NULL,
               digest TEXT NOT NULL,
               previous_digest TEXT,
               PRIMARY KEY (event_id, workflow_id, run_id),
               FOREIGN KEY (entry_id, digest) REFERENCES revisions(entry_id, digest)
           ) WITHOUT ROWID""",
        """CREATE INDEX run_upgrades_by_run ON run_upgrades(workflow_id, run_id, event_id)""",
        """CREATE INDEX run_upgrades_by_entry ON run_upgrades(entry_id, event_id)""",
        """CREATE TRIGGER run_upgrades_are_immutable BEFORE UPDATE ON run_upgrades
           BEGIN SELECT RAISE(ABORT, 'flowctl upgrade records are immutable'); END""",
    ),
    3: (
        # The worker's watchdog: a run (activity_id '') or one activity of it whose Lua call ran past
        # its allowance and took a worker process down; its next task or attempt fails at once.
        # Not an event: nothing about the entries changed (the change token counts these rows too).
        """CREATE TABLE quarantined_runs (
               id INTEGER PRIMARY KEY AUTOINCREMENT,
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
        """CREATE TRIGGER quarantined_runs_are_immutable BEFORE UPDATE ON quarantined_runs
           BEGIN SELECT RAISE(ABORT, 'flowctl quarantine records are immutable'); END""",
    ),
}

LATEST_VERSION = max(MIGRATIONS)

"""The revision store contract, on SQLite files and on a real PostgreSQL (``store`` runs each test on both);
then the SQLite-only cases: paths, bad files, migrations."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from registry.errors import FlowError
from registry.loader import load_project
from registry.open_store import open_store
from registry.plan import Action, compute_plan
from registry.revision import Revision, build_revisions
from registry.sqlite_migrations import LATEST_VERSION
from registry.store import RegistryConflict, RegistryError, RevisionStore, RunUpgrade
from tests.support.postgres import RAW_ERRORS, raw_execute
from tests.support.projects import ENTRY_FILE, write_project


def tree(root: Path, entry_file: str = ENTRY_FILE, **sources: str) -> dict[str, Revision]:
    project = load_project([write_project(root, entry_file, **sources)])
    assert project.diagnostics == []
    return build_revisions(project)


def apply(store: RevisionStore, revisions: dict[str, Revision], *, prune: bool = False):
    return store.apply(compute_plan(revisions, store, prune=prune), actor="tester@box")


@pytest.fixture
def store(store_url: str):
    with open_store(store_url) as opened:
        yield opened


def test_apply_stores_revisions_that_read_back_equal(store: RevisionStore, tmp_path: Path) -> None:
    revs = tree(tmp_path)
    event = apply(store, revs)
    assert event is not None and event.verb == "apply" and event.actor == "tester@box"
    assert {c.entry_id: c.action for c in event.changes} == {k: "created" for k in revs}
    # a fresh connection, so nothing comes from the first one's cache
    with open_store(store.url) as other:
        for entry_id, rev in revs.items():
            got = other.current(entry_id)
            assert got is not None
            assert (got.digest, got.kind, got.data, got.source, got.source_name, got.imports) == (
                rev.digest, rev.kind, rev.data, rev.source, rev.source_name, rev.imports)
            libraries = {k: v.digest for k, v in got.libraries.items()}
            assert libraries == {k: v.digest for k, v in rev.libraries.items()}
        assert [r.entry_id for r in other.list_current()] == sorted(revs)
        assert other.revision("app:money", revs["app:money"].digest) == other.current("app:money")
        assert other.revision("app:money", "0" * 64) is None
        assert other.current("app:nope") is None


def test_env_references_are_stored_unresolved(store: RevisionStore, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "resolved:1")
    apply(store, tree(tmp_path))
    client = store.current("app:client")
    assert client is not None and client.data["address"] == "${env:TEMPORAL_ADDRESS:-localhost:7233}"
    raw = raw_execute(store.url, "SELECT data_yaml FROM revisions")
    assert not any("resolved:1" in row[0] for row in raw)


def test_reapplying_the_same_tree_writes_nothing(store: RevisionStore, tmp_path: Path) -> None:
    revs = tree(tmp_path)
    apply(store, revs)
    token = store.change_token()
    plan = compute_plan(tree(tmp_path / "again"), store)
    assert {c.action for c in plan.changes} == {Action.UNCHANGED}
    assert not plan.has_changes
    assert store.apply(plan) is None
    assert store.change_token() == token
    assert len(store.history()) == 1
    rows = raw_execute(store.url, "SELECT count(*) FROM revisions")[0][0]
    assert rows == len(revs)


def test_change_keeps_old_revision_and_records_history(store: RevisionStore, tmp_path: Path) -> None:
    first = tree(tmp_path / "a")
    apply(store, first)
    token = store.change_token()
    second = tree(tmp_path / "b", money_lua="return {round = function(x) return x end}\n")
    plan = compute_plan(second, store)
    assert {c.entry_id for c in plan.of(Action.CHANGED)} == {"app:money", "app:pricing", "app:order_workflow"}
    event = store.apply(plan, actor="someone@else")
    assert event is not None and store.change_token() != token
    assert store.current("app:money").digest == second["app:money"].digest  # type: ignore[union-attr]
    old = store.revision("app:money", first["app:money"].digest)
    assert old is not None and old.source == first["app:money"].source
    history = store.history("app:money")
    assert [e.actor for e in history] == ["someone@else", "tester@box"]
    assert [c.action for c in history[0].changes] == ["changed"]
    assert history[0].changes[0].previous_digest == first["app:money"].digest
    infos = store.revisions_of("app:money")
    assert [i.digest for i in infos] == [first["app:money"].digest, second["app:money"].digest]
    assert [i.is_current for i in infos] == [False, True]


def test_entries_gone_from_the_tree_are_deleted_only_with_prune(store: RevisionStore, tmp_path: Path) -> None:
    apply(store, tree(tmp_path / "a"))
    smaller = ENTRY_FILE.split("  - name: pricing")[0]  # keeps client and worker only
    revs = tree(tmp_path / "b", smaller)
    plan = compute_plan(revs, store)
    deleted = {c.entry_id for c in plan.of(Action.DELETED)}
    assert deleted == {"app:pricing", "app:money", "app:order_workflow"}
    assert not plan.has_changes and store.apply(plan) is None
    event = apply(store, revs, prune=True)
    assert event is not None and {c.action for c in event.changes} == {"deleted"}
    assert sorted(r.entry_id for r in store.list_current()) == ["app:client", "app:worker"]
    assert store.revisions_of("app:money")  # deleted from current, the revision itself is kept


def test_prune_leaves_other_namespaces_alone(store: RevisionStore, tmp_path: Path) -> None:
    apply(store, tree(tmp_path / "a"))
    other = ENTRY_FILE.split("  - name: pricing")[0].replace("namespace: app", "namespace: billing")
    event = apply(store, tree(tmp_path / "b", other.replace("app:client", "billing:client")), prune=True)
    assert event is not None and {c.action for c in event.changes} == {"created"}
    assert len(store.list_current()) == 7


def test_rollback_by_digest_prefix(store: RevisionStore, tmp_path: Path) -> None:
    first = tree(tmp_path / "a")
    apply(store, first)
    apply(store, tree(tmp_path / "b", money_lua="return {}\n"))
    old = first["app:money"].digest
    target = store.resolve("app:money", old[:7].upper())
    event = store.rollback(target, actor="ops@box")
    assert event is not None and event.verb == "rollback"
    assert store.current("app:money").digest == old  # type: ignore[union-attr]
    assert store.rollback(target) is None  # already current: no empty event
    assert len(store.history()) == 3
    with pytest.raises(FlowError, match="has no revision ffff"):
        store.resolve("app:money", "ffff")
    with pytest.raises(FlowError, match="not a revision digest"):
        store.resolve("app:money", "xyz")
    with pytest.raises(FlowError, match="never been applied"):
        store.resolve("app:nope", "ab")


def test_ambiguous_prefix_is_refused(store: RevisionStore, tmp_path: Path) -> None:
    digests = []
    for i in range(40):  # 40 revisions: two of them share a first hex digit for sure
        revs = tree(tmp_path / str(i), money_lua=f"return {{v = {i}}}\n")
        apply(store, revs)
        digests.append(revs["app:money"].digest)
    first_digits = [d[0] for d in digests]
    shared = next(c for c in first_digits if first_digits.count(c) > 1)
    with pytest.raises(FlowError, match="ambiguous") as info:
        store.resolve("app:money", shared)
    assert info.value.hint == "give more digits of the digest"


def test_plan_against_a_store_that_moved_on_is_a_conflict(store: RevisionStore, tmp_path: Path) -> None:
    apply(store, tree(tmp_path / "a"))
    stale = compute_plan(tree(tmp_path / "b", money_lua="return {b = 1}\n"), store)
    apply(store, tree(tmp_path / "c", money_lua="return {c = 1}\n"))
    token = store.change_token()
    with pytest.raises(RegistryConflict, match=r"app:money \(planned against \w+, now \w+\)") as info:
        store.apply(stale)
    assert "flowctl diff" in (info.value.hint or "")
    assert store.change_token() == token


def test_plan_already_applied_by_someone_else_is_not_a_conflict(store: RevisionStore, tmp_path: Path) -> None:
    revs = tree(tmp_path)
    plan = compute_plan(revs, store)
    apply(store, revs)
    assert store.apply(plan) is None


def test_revisions_cannot_be_modified_behind_the_stores_back(store: RevisionStore, tmp_path: Path) -> None:
    """The database itself refuses: a direct UPDATE or DELETE (or TRUNCATE on PostgreSQL) fails."""
    apply(store, tree(tmp_path))
    with pytest.raises(RAW_ERRORS, match="immutable"):
        raw_execute(store.url, "UPDATE revisions SET source = 'evil'")
    with pytest.raises(RAW_ERRORS, match="never deleted"):
        raw_execute(store.url, "DELETE FROM revisions")
    if store.url.startswith("postgres"):
        with pytest.raises(RAW_ERRORS, match="never deleted"):
            raw_execute(store.url, "TRUNCATE revisions CASCADE")
    assert raw_execute(store.url, "SELECT count(*) FROM revisions WHERE source = 'evil'")[0][0] == 0


def test_change_token_seen_by_another_connection(store: RevisionStore, tmp_path: Path) -> None:
    with open_store(store.url) as reader:
        before = reader.change_token()
        apply(store, tree(tmp_path))
        assert reader.change_token() != before
        assert reader.current("app:worker") is not None


def test_default_location_env_and_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FLOWCTL_REGISTRY", raising=False)
    open_store().close()
    assert (tmp_path / ".flowctl" / "registry.db").is_file()
    monkeypatch.setenv("FLOWCTL_REGISTRY", "from-env.db")
    open_store().close()
    assert (tmp_path / "from-env.db").is_file()
    open_store("sqlite:///rel/x.db").close()
    assert (tmp_path / "rel" / "x.db").is_file()
    open_store(f"sqlite:///{tmp_path}/abs.db").close()
    assert (tmp_path / "abs.db").is_file()
    with open_store("sqlite:///:memory:") as memory:
        assert memory.list_current() == []


def test_missing_store_reads_empty_without_creating_it(tmp_path: Path) -> None:
    path = tmp_path / "none" / "registry.db"
    with open_store(str(path), create=False) as empty:
        assert empty.current_digests() == {}
        assert not compute_plan(tree(tmp_path), empty).of(Action.UNCHANGED)
    assert not path.exists() and not path.parent.exists()


@pytest.mark.parametrize("url, message", [
    ("postgresql://me:secret@db/flow", "literal password"),
    ("postgresql://me:${env:FLOWCTL_TEST_UNSET_PASSWORD}@db/flow", "FLOWCTL_TEST_UNSET_PASSWORD.*not set"),
    ("s3://bucket/x", "unknown registry URL scheme 's3'"),
    ("sqlite://relative.db", "malformed"),
])
def test_unsupported_urls(url: str, message: str) -> None:
    with pytest.raises(RegistryError, match=message) as info:
        open_store(url)
    assert info.value.hint


def test_a_file_that_is_not_a_registry(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("just some text, long enough to not be a database header at all\n" * 20)
    with pytest.raises(RegistryError, match="is not a flowctl registry") as info:
        open_store(str(text))
    assert "--registry" in (info.value.hint or "")
    assert text.read_text().startswith("just some text")

    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE people (name TEXT)").connection.commit()
    with pytest.raises(RegistryError, match="an SQLite database but not a flowctl registry"):
        open_store(str(other))
    with pytest.raises(RegistryError, match="is a directory"):
        open_store(str(tmp_path))


def test_a_registry_from_a_newer_flowctl(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    open_store(str(path)).close()
    raw = sqlite3.connect(path)
    raw.execute("UPDATE schema_version SET version = ?", (LATEST_VERSION + 1,))
    raw.commit()
    raw.close()
    with pytest.raises(RegistryError, match=f"schema version {LATEST_VERSION + 1}, newer") as info:
        open_store(str(path))
    assert "upgrade flowctl" in (info.value.hint or "")


def test_an_empty_sqlite_file_becomes_a_registry(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    with open_store(str(path)) as opened:
        assert opened.list_current() == []
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT version FROM schema_version").fetchall() == [(LATEST_VERSION,)]
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_writer_kept_waiting_reports_the_registry_busy(tmp_path: Path) -> None:
    from registry.sqlite_store import SqliteRevisionStore

    path = tmp_path / "registry.db"
    open_store(str(path)).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer, mid-transaction
    try:
        with SqliteRevisionStore(path, busy_timeout=0.2) as waiting:
            with pytest.raises(RegistryConflict, match="locked by another writer") as info:
                apply(waiting, tree(tmp_path))
            assert "retry" in (info.value.hint or "")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with open_store(str(path)) as store:
        assert store.history() == [] and store.current_digests() == {}


def test_a_later_schema_version_upgrades_the_store_in_place(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import registry.sqlite_store as sqlite_store

    path = tmp_path / "registry.db"
    revs = tree(tmp_path)
    with open_store(str(path)) as old:
        apply(old, revs)
        token = old.change_token()
    step = LATEST_VERSION + 1
    upgrade = ("ALTER TABLE events ADD COLUMN later_column TEXT",)
    monkeypatch.setattr(sqlite_store, "MIGRATIONS", {**sqlite_store.MIGRATIONS, step: upgrade})
    monkeypatch.setattr(sqlite_store, "LATEST_VERSION", step)
    with open_store(str(path)) as upgraded:
        assert upgraded.current_digests() == {k: r.digest for k, r in revs.items()}
        assert upgraded.change_token() == token
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT version FROM schema_version").fetchall() == [(step,)]
    assert "later_column" in [row[1] for row in raw.execute("PRAGMA table_info(events)")]
    raw.close()


def test_a_damaged_registry_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    open_store(str(path)).close()
    raw = sqlite3.connect(path)
    raw.execute("DROP TABLE schema_version")
    raw.commit()
    raw.close()
    with pytest.raises(RegistryError, match=r"registry .*registry\.db is damaged: no such table") as info:
        open_store(str(path))
    assert "backup" in (info.value.hint or "")


def test_upgrades_are_recorded_as_events_and_the_newest_per_run_wins(store: RevisionStore, tmp_path: Path) -> None:
    first = tree(tmp_path / "one")
    apply(store, first)
    second = tree(tmp_path / "two", order_workflow_lua="return {main = function() return 2 end}")
    apply(store, second)
    old, new = first["app:order_workflow"].digest, second["app:order_workflow"].digest
    assert old != new
    token = store.change_token()
    event = store.upgrade_runs([RunUpgrade("order-1", "r1", "app:order_workflow", new, old)], actor="op@box",
                               note="fix for the bug")
    assert event.verb == "upgrade" and event.note == "fix for the bug" and event.changes == ()
    assert store.change_token() != token
    store.upgrade_runs([RunUpgrade("order-1", "r1", "app:order_workflow", old, new),
                        RunUpgrade("order-2", "r9", "app:order_workflow", new, old)])
    moves = store.run_upgrades()
    assert {key: move.digest for key, move in moves.items()} == {("order-1", "r1"): old, ("order-2", "r9"): new}
    shown = store.history("app:order_workflow", limit=3)
    assert [e.verb for e in shown] == ["upgrade", "upgrade", "apply"]
    assert shown[1].runs == (RunUpgrade("order-1", "r1", "app:order_workflow", new, old),)
    assert shown[1].to_dict()["runs"][0]["workflow_id"] == "order-1"
    assert store.history("app:pricing", limit=1)[0].verb == "apply"


def test_an_upgrade_to_a_revision_never_stored_writes_nothing(store: RevisionStore, tmp_path: Path) -> None:
    apply(store, tree(tmp_path))
    token = store.change_token()
    with pytest.raises(RegistryError, match="has no stored revision"):
        store.upgrade_runs([RunUpgrade("order-1", "r1", "app:order_workflow", "ab" * 32, None)])
    assert store.change_token() == token and store.run_upgrades() == {}


def test_an_apply_records_its_note(store: RevisionStore, tmp_path: Path) -> None:
    event = store.apply(compute_plan(tree(tmp_path), store), note="--no-gate: server down for maintenance")
    assert event is not None
    assert store.history(limit=1)[0].note == "--no-gate: server down for maintenance"


def test_a_version_1_store_is_migrated_with_its_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import registry.sqlite_store as sqlite_store

    path = tmp_path / "registry.db"
    with monkeypatch.context() as patch:
        patch.setattr(sqlite_store, "MIGRATIONS", {1: sqlite_store.MIGRATIONS[1]})
        patch.setattr(sqlite_store, "LATEST_VERSION", 1)
        open_store(str(path)).close()
    raw = sqlite3.connect(path)
    raw.execute("INSERT INTO events (verb, actor, at) VALUES ('apply', 'old@box', '2025-01-01T00:00:00Z')")
    raw.commit()
    raw.close()
    with open_store(str(path)) as migrated:
        assert [(e.verb, e.actor, e.note) for e in migrated.history()] == [("apply", "old@box", "")]
        assert migrated.run_upgrades() == {}
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT version FROM schema_version").fetchall() == [(LATEST_VERSION,)]
    raw.close()

"""Quarantined runs in the store (schema v3, SQLite and PostgreSQL): what the worker's supervisor records,
workers read back."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from registry.open_store import open_store
from registry.sqlite_migrations import LATEST_VERSION
from registry.store import QuarantinedRun, RevisionStore
from tests.support.postgres import RAW_ERRORS, raw_execute


@pytest.fixture
def store(store_url: str):
    with open_store(store_url) as opened:
        yield opened


def quarantine(store: RevisionStore, run_id: str = "r1", **fields: object) -> QuarantinedRun:
    values: dict[str, object] = {"workflow_id": "order-1", "run_id": run_id, "entry_id": "app:order_workflow",
                                 "reason": "a Lua call ran 4.1 s, past its 4 s allowance",
                                 "where": "order.lua (signal 'approve')", "history_length": 9, "actor": "op@box"}
    values.update(fields)
    return store.quarantine_run(**values)  # type: ignore[arg-type]


def test_a_quarantined_run_is_stored_with_who_and_when_and_read_back_in_order(store: RevisionStore) -> None:
    first = quarantine(store)
    assert (first.workflow_id, first.run_id, first.activity_id, first.entry_id) == (
        "order-1", "r1", "", "app:order_workflow")
    assert first.where == "order.lua (signal 'approve')" and first.history_length == 9
    assert first.actor == "op@box" and first.at.endswith("Z")
    activity = quarantine(store, activity_id="3", where="crunch.lua (activity attempt 1)", history_length=0)
    other = quarantine(store, workflow_id="order-2", run_id="r7")
    assert store.quarantined_runs() == [first, activity, other]
    assert store.quarantined_runs("order-1") == [first, activity]
    assert store.quarantined_runs("nobody") == []
    assert first.to_dict()["activity_id"] is None and activity.to_dict()["activity_id"] == "3"
    with open_store(store.url) as reopened:  # durable: another connection sees the same records
        assert reopened.quarantined_runs() == [first, activity, other]


def test_quarantining_again_keeps_the_first_record_and_only_a_new_one_moves_the_change_token(
        store: RevisionStore) -> None:
    token = store.change_token()
    first = quarantine(store)
    moved = store.change_token()
    assert moved != token, "workers must notice a quarantine like an apply"
    again = quarantine(store, reason="seen again by another worker", actor="other@box")
    assert again == first
    assert store.change_token() == moved
    assert len(store.history()) == 0, "a quarantine is no apply event: no entry changed"


def test_quarantine_records_cannot_be_changed(store: RevisionStore) -> None:
    quarantine(store)
    with pytest.raises(RAW_ERRORS, match="quarantine records are immutable"):
        raw_execute(store.url, "UPDATE quarantined_runs SET reason = 'nothing happened'")


def test_a_version_2_store_gains_the_quarantine_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import registry.sqlite_store as sqlite_store

    path = tmp_path / "registry.db"
    with monkeypatch.context() as patch:
        patch.setattr(sqlite_store, "MIGRATIONS", {k: v for k, v in sqlite_store.MIGRATIONS.items() if k <= 2})
        patch.setattr(sqlite_store, "LATEST_VERSION", 2)
        open_store(str(path)).close()
    with open_store(str(path)) as migrated:
        assert migrated.quarantined_runs() == []
        assert ":q" not in migrated.change_token(), "no quarantine yet: the token reads as before"
        quarantine(migrated)
        assert migrated.change_token().endswith(":q1")
        assert len(migrated.quarantined_runs()) == 1
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT version FROM schema_version").fetchall() == [(LATEST_VERSION,)] == [(3,)]
    raw.close()

"""The store under real processes: concurrent ``flowctl apply`` runs, and SIGKILL in mid-transaction.

Each test runs the real command line (``python -m cli``) against a real store: an SQLite file and
a PostgreSQL database (``store_url`` runs each test on both). The stores honour
``FLOWCTL_TEST_APPLY_PAUSE`` (seconds slept after each entry written inside the apply
transaction), which stretches a transaction so that applies overlap and a kill lands inside it.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from registry.loader import load_project
from registry.open_store import open_store
from registry.postgres_migrations import WRITE_LOCK
from registry.revision import build_revisions
from registry.store_rows import APPLY_PAUSE_ENV
from tests.support.postgres import raw_execute
from tests.support.projects import ENTRY_FILE, write_project

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")


def flowctl(*args: str, cwd: Path, pause: float = 0.0) -> subprocess.Popen[str]:
    """Start ``flowctl ARGS`` as its own process."""
    env = {**os.environ, APPLY_PAUSE_ENV: str(pause)}
    env.pop("FLOWCTL_REGISTRY", None)
    return subprocess.Popen([sys.executable, "-m", "cli", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def digests(entries: Path) -> dict[str, str]:
    return {k: r.digest for k, r in build_revisions(load_project([entries])).items()}


def assert_consistent(url: str) -> None:
    """The database passes its own checks and every pointer leads to a stored revision."""
    if not url.startswith("postgres"):
        with sqlite3.connect(url) as raw:
            assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert raw.execute("PRAGMA foreign_key_check").fetchall() == []
    dangling = raw_execute(url, "SELECT c.event_id, c.entry_id FROM event_changes c LEFT JOIN revisions r "
                                "ON r.entry_id = c.entry_id AND r.digest = c.digest "
                                "WHERE c.digest IS NOT NULL AND r.digest IS NULL")
    assert dangling == []
    orphans = raw_execute(url, "SELECT r.entry_id FROM revisions r LEFT JOIN events e ON e.id = r.event_id "
                               "WHERE e.id IS NULL")  # every revision was stored by a recorded event
    assert orphans == []
    empty = raw_execute(url, "SELECT e.id FROM events e WHERE e.verb = 'apply' AND NOT EXISTS "
                             "(SELECT 1 FROM event_changes c WHERE c.event_id = e.id)")
    assert empty == [], "an apply event without its changes: a partial apply"


def write_lock_held(url: str) -> bool:
    """Whether some process holds the store's write lock (i.e. is inside a write transaction)."""
    if url.startswith("postgres"):
        # a transaction-level try: released at once when this one-statement transaction ends
        return not raw_execute(url, f"SELECT pg_try_advisory_xact_lock({WRITE_LOCK})")[0][0]
    db = Path(url)
    if not db.exists():
        return False
    raw = sqlite3.connect(db, timeout=0, isolation_level=None)
    try:
        raw.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        return "locked" in str(exc) or "busy" in str(exc)
    else:
        raw.execute("ROLLBACK")
        return False
    finally:
        raw.close()


def test_two_applies_of_the_same_tree_both_succeed_once(tmp_path: Path, store_url: str) -> None:
    entries = write_project(tmp_path)
    db = store_url
    procs = [flowctl("apply", "--entries", str(entries), "--registry", db, cwd=tmp_path, pause=0.1)
             for _ in range(2)]
    results = [finish(p) for p in procs]
    for code, out, err in results:
        assert code == 0, out + err
        assert "Traceback" not in err
    # one of them wrote the tree; the other found it already there
    created = [out for _, out, _ in results if "app:money created" in out]
    assert len(created) == 1
    assert_consistent(db)
    with open_store(db) as store:
        assert store.current_digests() == digests(entries)
        assert len(store.history()) == 1


def test_two_applies_of_different_trees_conflict_cleanly_and_lose_nothing(tmp_path: Path, store_url: str) -> None:
    base = write_project(tmp_path / "base")
    db = store_url
    code, out, err = finish(flowctl("apply", "--entries", str(base), "--registry", db, cwd=tmp_path))
    assert code == 0, out + err

    trees = [write_project(tmp_path / name, money_lua=f"return {{round = function(x) return x + {i} end}}\n")
             for i, name in enumerate(("one", "two"), start=1)]
    procs = [flowctl("apply", "--entries", str(tree), "--registry", db, cwd=tmp_path, pause=0.2)
             for tree in trees]
    results = [finish(p) for p in procs]

    succeeded = []
    for tree, (code, out, err) in zip(trees, results, strict=True):
        assert "Traceback" not in err
        if code == 0:
            succeeded.append(tree)
        else:  # the loser says why and what to do; it wrote nothing
            assert code == 1, out + err
            assert "the registry changed since the plan was computed" in err
            assert "hint: another apply or rollback ran meanwhile" in err
    assert succeeded, "at least one apply must win"
    assert_consistent(db)
    with open_store(db) as store:
        history = store.history()
        assert len(history) == 1 + len(succeeded)
        # no revision lost: every successful tree's revisions are stored and readable
        for tree in succeeded:
            for entry_id, digest in digests(tree).items():
                stored = store.revision(entry_id, digest)
                assert stored is not None and stored.digest == digest
        # the registry holds exactly the tree that was applied last
        last_money = history[0].changes[0]
        assert last_money.entry_id == "app:money"
        winner = next(t for t in succeeded if digests(t)["app:money"] == last_money.digest)
        assert store.current_digests() == digests(winner)


@pytest.mark.parametrize("existing", [False, True], ids=["fresh-store", "existing-store"])
def test_sigkill_during_apply_leaves_the_store_unchanged(tmp_path: Path, existing: bool, store_url: str) -> None:
    db = store_url
    base = write_project(tmp_path / "base")
    if existing:
        code, out, err = finish(flowctl("apply", "--entries", str(base), "--registry", db, cwd=tmp_path))
        assert code == 0, out + err
    with open_store(db) as store:
        before = (store.current_digests(), store.change_token(), len(store.history()))

    changed = write_project(tmp_path / "changed", ENTRY_FILE.replace("modules: [funcs]", "modules: [time]"),
                            money_lua="return {round = function(x) return x end}\n")
    proc = flowctl("apply", "--entries", str(changed), "--registry", db, cwd=tmp_path, pause=1.0)
    try:
        deadline = time.monotonic() + 30
        while not write_lock_held(db):  # the apply transaction has begun
            assert proc.poll() is None, finish(proc)
            assert time.monotonic() < deadline, "apply never started its transaction"
            time.sleep(0.02)
        time.sleep(0.3)  # inside the first pause: one entry is written, the others are not
        assert proc.poll() is None, "apply finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL

    assert_consistent(db)
    with open_store(db) as store:
        assert (store.current_digests(), store.change_token(), len(store.history())) == before
    stored = raw_execute(db, "SELECT count(*) FROM revisions")[0][0]
    assert stored == (len(before[0]) if existing else 0), "no revision of the killed apply survives"

    # the store works normally afterwards: the same apply now goes through completely
    code, out, err = finish(flowctl("apply", "--entries", str(changed), "--registry", db, cwd=tmp_path))
    assert code == 0, out + err
    with open_store(db) as store:
        assert store.current_digests() == digests(changed)


def test_ten_concurrent_applies_lose_no_revision_and_keep_history_consistent(tmp_path: Path, store_url: str) -> None:
    """10 ``flowctl apply`` processes at once, each with its own change: every winner's revisions are stored,
    every loser wrote nothing and said why, and the history holds exactly one event per winner."""
    base = write_project(tmp_path / "base")
    code, out, err = finish(flowctl("apply", "--entries", str(base), "--registry", store_url, cwd=tmp_path))
    assert code == 0, out + err
    trees = [write_project(tmp_path / f"t{i}", money_lua=f"return {{round = function(x) return x + {i} end}}\n")
             for i in range(10)]
    procs = [flowctl("apply", "--entries", str(tree), "--registry", store_url, cwd=tmp_path, pause=0.02)
             for tree in trees]
    results = [finish(p, timeout=120) for p in procs]
    winners = []
    for tree, (code, out, err) in zip(trees, results, strict=True):
        assert "Traceback" not in err, err
        if code == 0:
            winners.append(tree)
        else:
            assert code == 1 and "the registry changed since the plan was computed" in err, out + err
    assert winners
    assert_consistent(store_url)
    with open_store(store_url) as store:
        history = store.history()
        assert len(history) == 1 + len(winners)
        assert [e.id for e in history] == sorted((e.id for e in history), reverse=True)
        for tree in winners:  # 0 lost revisions
            for entry_id, digest in digests(tree).items():
                assert store.revision(entry_id, digest) is not None
        # each event changed what the one before it left current: the history is one unbroken chain
        chain = [e.changes for e in reversed(history)]
        current: dict[str, str | None] = {}
        for changes in chain:
            for change in changes:
                assert current.get(change.entry_id) == change.previous_digest
                current[change.entry_id] = change.digest
        assert {k: v for k, v in current.items() if v} == store.current_digests()


def test_sigkill_during_apply_twenty_times_never_leaves_a_partial_apply(tmp_path: Path, store_url: str) -> None:
    """``kill -9`` lands inside the apply transaction 20 times; the store is as before every time."""
    base = write_project(tmp_path / "base")
    code, out, err = finish(flowctl("apply", "--entries", str(base), "--registry", store_url, cwd=tmp_path))
    assert code == 0, out + err
    with open_store(store_url) as store:
        before = (store.current_digests(), store.change_token(), len(store.history()))
    changed = write_project(tmp_path / "changed", money_lua="return {round = function(x) return -x end}\n")
    for attempt in range(20):
        proc = flowctl("apply", "--entries", str(changed), "--registry", store_url, cwd=tmp_path, pause=0.5)
        try:
            deadline = time.monotonic() + 30
            while not write_lock_held(store_url):
                assert proc.poll() is None, finish(proc)
                assert time.monotonic() < deadline, "apply never started its transaction"
                time.sleep(0.01)
            time.sleep(0.05 * (attempt % 5))  # at different points of the transaction
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.communicate()
        assert proc.returncode == -signal.SIGKILL, f"attempt {attempt}: apply finished before the kill"
        with open_store(store_url) as store:
            assert (store.current_digests(), store.change_token(), len(store.history())) == before, attempt
    assert_consistent(store_url)
    assert raw_execute(store_url, "SELECT count(*) FROM revisions")[0][0] == len(before[0])

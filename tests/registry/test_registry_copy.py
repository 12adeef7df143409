"""``flowctl registry copy``: SQLite -> PostgreSQL -> SQLite keeps every revision, event and pin."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import cli
from registry.loader import load_project
from registry.open_store import open_store
from registry.plan import compute_plan
from registry.revision import build_revisions
from tests.support.paths import REPO
from tests.support.postgres import PostgresServer, raw_execute
from tests.support.projects import write_project


def run(*args: str) -> Result:
    return CliRunner().invoke(cli.main, list(args), catch_exceptions=False)


def listed(url: str) -> object:
    result = run("registry", "list", "--registry", url, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def history(url: str) -> object:
    result = run("registry", "history", "--registry", url, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_copy_from_the_sqlite_of_entries_to_postgres_and_back_is_identical(
        tmp_path: Path, postgres_server: PostgresServer) -> None:
    first = str(tmp_path / "first.db")
    with open_store(first) as store:
        revisions = build_revisions(load_project([REPO / "entries"]))
        store.apply(compute_plan(revisions, store), actor="dev@laptop")
        money = next(iter(sorted(revisions)))
        store.quarantine_run(workflow_id="wf", run_id="r", entry_id=money, reason="test")
    shared = postgres_server.new_database()

    there = run("registry", "copy", "--from", first, "--to", shared)
    assert there.exit_code == 0, there.output
    assert f"{len(revisions)} revision digest(s) verified" in there.stdout
    back_path = str(tmp_path / "back.db")
    back = run("registry", "copy", "--from", shared, "--to", back_path, "--json")
    assert back.exit_code == 0, back.output
    assert json.loads(back.stdout)["verified"] == len(revisions)

    assert listed(first) == listed(shared) == listed(back_path)
    assert history(first) == history(shared) == history(back_path)
    digests = {rev.entry_id: rev.digest for rev in revisions.values()}
    for url in (shared, back_path):
        with open_store(url) as copy:
            assert copy.current_digests() == digests
            assert [q.to_dict() for q in copy.quarantined_runs()] == [
                q.to_dict() for q in open_store(first).quarantined_runs()]
    with open_store(shared) as copy:  # the copy goes on: the next event follows the copied ones
        event = copy.apply(compute_plan(build_revisions(load_project([write_project(tmp_path / "more")])), copy))
        assert event is not None and event.id == 2


def test_copy_refuses_a_non_empty_target_unless_merge_which_adds_only_what_it_lacks(
        tmp_path: Path, postgres_server: PostgresServer) -> None:
    source, target = str(tmp_path / "source.db"), postgres_server.new_database()
    one = build_revisions(load_project([write_project(tmp_path / "one")]))
    two = build_revisions(load_project([write_project(tmp_path / "two", money_lua="return {}\n")]))
    with open_store(source) as store:
        store.apply(compute_plan(one, store), actor="a@x")
        store.apply(compute_plan(two, store), actor="b@x")
    with open_store(target) as store:
        store.apply(compute_plan(one, store), actor="a@x")

    refused = run("registry", "copy", "--from", source, "--to", target)
    assert refused.exit_code == 1
    assert "is not empty" in refused.output and "--merge" in refused.output

    merged = run("registry", "copy", "--from", source, "--to", target, "--merge", "--json")
    assert merged.exit_code == 0, merged.output
    added = json.loads(merged.stdout)["added"]
    # both applies are new to the target (another actor's first apply is not its own)
    assert added["events"] == 2 and added["current"] == 0
    changed = {k for k in two if two[k].digest != one[k].digest}
    assert added["revisions"] == len(changed)
    with open_store(target) as store:
        assert store.current_digests() == {k: r.digest for k, r in one.items()}, "the target's pointers win"
        for rev in two.values():
            assert store.revision(rev.entry_id, rev.digest) is not None
    again = run("registry", "copy", "--from", source, "--to", target, "--merge", "--json")
    assert json.loads(again.stdout)["added"] == {name: 0 for name in added}, "a second merge adds nothing"
    assert raw_execute(target, "SELECT count(*) FROM events")[0][0] == 3


@pytest.mark.parametrize("args, message", [
    (("--from", "same.db", "--to", "same.db"), "both name"),
    (("--from", "nowhere.db", "--to", "postgresql://me:pw@localhost/x"), "literal password"),
])
def test_copy_errors_say_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...],
                                    message: str) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("registry", "copy", *args)
    assert result.exit_code != 0 and message in result.output and "hint:" in result.output

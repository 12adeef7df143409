"""``flowctl diff``, ``apply`` and ``registry list|show|history|rollback`` through click's CliRunner.

Every command and exit code, against real SQLite files in tmp dirs. The entries are valid
under every validation stage (schema, references, Lua), so these tests hold whether or not
the Lua stage is installed.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import cli

ENTRY_FILE = """\
version: "1.0"
namespace: app
entries:
  - name: client
    kind: temporal.client
    address: ${env:REGISTRY_CLI_TEST_ADDRESS:-localhost:7233}
  - name: worker
    kind: temporal.worker
    client: app:client
  - name: money
    kind: library.lua
    source: file://money.lua
  - name: order
    kind: workflow.lua
    source: file://order.lua
    modules: [time]
    imports: {money: app:money}
    meta:
      temporal:
        workflow:
          worker: app:worker
"""

MONEY_LUA = """\
-- Rounds amounts to whole cents.
local function round(x)
  return math.floor(x * 100 + 0.5) / 100
end

return {round = round}
"""

ORDER_LUA = """\
local time = require("time")
local money = require("money")

local function main(input)
  time.sleep("1s")
  return {total = money.round(input.total)}
end

return {main = main}
"""


def write_tree(root: Path, entry_file: str = ENTRY_FILE, *, money: str = MONEY_LUA,
               order: str = ORDER_LUA) -> Path:
    """An entries directory under ``root``; rewrites every file, so a test can edit the tree in place."""
    entries = root / "entries"
    entries.mkdir(parents=True, exist_ok=True)
    (entries / "app.yaml").write_text(entry_file)
    (entries / "money.lua").write_text(money)
    (entries / "order.lua").write_text(order)
    return entries


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with a valid tree in ``entries/`` and no registry yet."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FLOWCTL_REGISTRY", raising=False)
    monkeypatch.delenv("FLOWCTL_ENTRIES", raising=False)
    write_tree(tmp_path)
    return tmp_path


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli.main, list(args), env=env, catch_exceptions=False)


def lines(result: Result) -> list[str]:
    return result.stdout.splitlines()


def events(db: Path) -> int:
    with sqlite3.connect(db) as raw:
        return int(raw.execute("SELECT count(*) FROM events").fetchone()[0])


DB = Path(".flowctl/registry.db")


# -- diff --------------------------------------------------------------------------------------


def test_diff_exit_codes_and_plan(project: Path) -> None:
    first = run("diff")
    assert first.exit_code == 1, first.output
    assert "+ app:order (workflow.lua) created" in first.stdout
    assert '    +  time.sleep("1s")' in lines(first)  # the Lua source is part of the diff
    assert "Plan: 4 to create, 0 to change, 0 to delete, 0 unchanged." in first.stdout
    assert not DB.exists(), "diff must not create the registry"

    assert run("apply").exit_code == 0
    same = run("diff")
    assert same.exit_code == 0, same.output
    assert "Plan: 0 to create, 0 to change, 0 to delete, 4 unchanged." in same.stdout

    write_tree(project, money=MONEY_LUA.replace("100", "1000"))
    changed = run("diff")
    assert changed.exit_code == 1
    assert "~ app:money (library.lua) changed" in changed.stdout
    assert "-  return math.floor(x * 100 + 0.5) / 100" in changed.stdout
    assert "+  return math.floor(x * 1000 + 0.5) / 1000" in changed.stdout
    # the workflow's own files did not change, but its imported library did
    assert "~ app:order (workflow.lua) changed" in changed.stdout
    assert "library app:money:" in changed.stdout
    assert events(DB) == 1, "diff writes nothing"


def test_diff_shows_yaml_changes_and_deletions(project: Path) -> None:
    run("apply")
    smaller = ENTRY_FILE.replace("modules: [time]", "modules: [time, json]")
    write_tree(project, smaller)
    changed = run("diff")
    assert changed.exit_code == 1
    assert "    +- json" in lines(changed) and "     - time" in lines(changed)

    without_order = ENTRY_FILE.split("  - name: order")[0]
    write_tree(project, without_order)
    kept = run("diff")
    assert kept.exit_code == 0, "an entry gone from the tree is only deleted with --prune"
    assert "- app:order (workflow.lua) deleted (kept: apply --prune deletes it)" in kept.stdout
    pruned = run("diff", "--prune")
    assert pruned.exit_code == 1
    assert "Plan: 0 to create, 0 to change, 1 to delete, 3 unchanged." in pruned.stdout


def test_diff_json(project: Path) -> None:
    result = run("diff", "--json")
    assert result.exit_code == 1
    body = json.loads(result.stdout)
    assert body["ok"] is True and body["has_changes"] is True
    assert body["counts"] == {"created": 4, "changed": 0, "unchanged": 0, "deleted": 0}
    order = next(c for c in body["changes"] if c["id"] == "app:order")
    assert order["action"] == "created" and len(order["digest"]) == 64 and "money.round" in order["diff"]


def test_diff_of_an_invalid_tree_exits_2(project: Path) -> None:
    write_tree(project, ENTRY_FILE.replace("kind: temporal.worker", "kind: temporal.wroker"))
    result = run("diff")
    assert result.exit_code == 2
    assert "FC102" in result.stderr and "the tree is invalid" in result.stderr
    as_json = run("diff", "--json")
    assert as_json.exit_code == 2
    assert json.loads(as_json.stdout)["ok"] is False


def test_diff_against_a_file_that_is_not_a_registry_exits_2(project: Path) -> None:
    Path("notes.db").write_text("not a database, just text\n" * 50)
    result = run("diff", "--registry", "notes.db")
    assert result.exit_code == 2
    assert "is not a flowctl registry" in result.stderr and "hint:" in result.stderr
    assert "Traceback" not in result.output


# -- apply -------------------------------------------------------------------------------------


def test_apply_prints_plan_then_one_line_per_entry(project: Path) -> None:
    result = run("apply")
    assert result.exit_code == 0, result.output
    out = lines(result)
    assert out[:5] == [
        "+ app:client (temporal.client) created",
        "+ app:money (library.lua) created",
        "+ app:order (workflow.lua) created",
        "+ app:worker (temporal.worker) created",
        "Plan: 4 to create, 0 to change, 0 to delete, 0 unchanged.",
    ]
    assert out[5:] == ["app:client created", "app:money created", "app:order created", "app:worker created",
                       "applied as event #1"]
    assert DB.is_file()


def test_reapplying_the_same_tree_prints_only_unchanged_and_writes_nothing(project: Path) -> None:
    run("apply")
    with sqlite3.connect(DB) as raw:
        revisions = raw.execute("SELECT count(*) FROM revisions").fetchone()[0]
    again = run("apply")
    assert again.exit_code == 0
    assert lines(again) == ["app:client unchanged", "app:money unchanged", "app:order unchanged",
                            "app:worker unchanged"]
    assert events(DB) == 1
    with sqlite3.connect(DB) as raw:
        assert raw.execute("SELECT count(*) FROM revisions").fetchone()[0] == revisions


def test_apply_of_an_invalid_tree_writes_nothing(project: Path) -> None:
    write_tree(project, ENTRY_FILE.replace("kind: temporal.client", "kind: temporal.cliant"))
    result = run("apply")
    assert result.exit_code == 1
    assert "FC102" in result.stderr and "nothing was applied" in result.stderr
    assert result.stdout == ""
    assert not DB.exists(), "an invalid tree must not even create the store (only the validation cache is written)"

    write_tree(project)
    run("apply")
    write_tree(project, ENTRY_FILE.replace("kind: temporal.client", "kind: temporal.cliant"),
               money="return {}\n")
    assert run("apply").exit_code == 1
    assert events(DB) == 1
    as_json = run("apply", "--json")
    assert as_json.exit_code == 1
    body = json.loads(as_json.stdout)
    assert body["ok"] is False and body["diagnostics"][0]["code"] == "FC102"


def test_apply_dry_run_writes_nothing(project: Path) -> None:
    fresh = run("apply", "--dry-run")
    assert fresh.exit_code == 0
    assert "app:order created (dry run)" in lines(fresh)
    assert lines(fresh)[-1] == "dry run: nothing was written"
    assert not DB.exists()

    run("apply")
    write_tree(project, money="return {round = math.floor}\n")
    dry = run("apply", "--dry-run")
    assert dry.exit_code == 0 and "app:money changed (dry run)" in lines(dry)
    assert events(DB) == 1
    assert run("diff").exit_code == 1, "the change is still pending"


def test_apply_prune_deletes_only_with_the_flag(project: Path) -> None:
    run("apply")
    write_tree(project, ENTRY_FILE.split("  - name: order")[0])
    kept = run("apply")
    assert kept.exit_code == 0
    assert "app:order unchanged (gone from the tree; apply --prune deletes it)" in lines(kept)
    assert events(DB) == 1
    pruned = run("apply", "--prune")
    assert pruned.exit_code == 0
    assert "- app:order (workflow.lua) deleted" in lines(pruned)
    assert "app:order deleted" in lines(pruned)
    listed = run("registry", "list")
    assert "app:order" not in listed.stdout and "app:money" in listed.stdout
    shown = run("registry", "show", "app:order")
    assert shown.exit_code == 1 and "(it was deleted)" in shown.stderr and "--revision" in shown.stderr


def test_apply_json(project: Path) -> None:
    result = run("apply", "--json")
    assert result.exit_code == 0
    body = json.loads(result.stdout)
    assert body["ok"] is True and body["event"] == 1 and body["dry_run"] is False
    assert {e["id"]: e["action"] for e in body["entries"]} == {
        "app:client": "created", "app:money": "created", "app:order": "created", "app:worker": "created"}
    again = json.loads(run("apply", "--json").stdout)
    assert again["event"] is None and {e["action"] for e in again["entries"]} == {"unchanged"}


def test_apply_stores_env_references_unresolved(project: Path) -> None:
    run("apply", env={"REGISTRY_CLI_TEST_ADDRESS": "resolved.example:7233"})
    shown = run("registry", "show", "app:client")
    assert "address: ${env:REGISTRY_CLI_TEST_ADDRESS:-localhost:7233}" in shown.stdout
    with sqlite3.connect(DB) as raw:
        assert not [row for row in raw.execute("SELECT data_yaml FROM revisions") if "resolved" in row[0]]


def test_registry_location_from_option_env_and_url(project: Path) -> None:
    assert run("apply", "--registry", "sqlite:///stores/a.db").exit_code == 0
    assert Path("stores/a.db").is_file()
    assert run("apply", env={"FLOWCTL_REGISTRY": "stores/b.db"}).exit_code == 0
    assert Path("stores/b.db").is_file()
    assert run("registry", "list", env={"FLOWCTL_REGISTRY": "stores/b.db"}).stdout.count("app:") == 4
    assert not DB.exists()


def test_apply_refuses_bad_stores_with_exit_1(project: Path) -> None:
    Path("notes.db").write_text("plain text\n" * 100)
    not_registry = run("apply", "--registry", "notes.db")
    assert not_registry.exit_code == 1
    assert "notes.db is not a flowctl registry" in not_registry.stderr
    assert Path("notes.db").read_text().startswith("plain text"), "the file must be left alone"

    run("apply", "--registry", "newer.db")
    with sqlite3.connect("newer.db") as raw:
        raw.execute("UPDATE schema_version SET version = version + 1")
    newer = run("apply", "--registry", "newer.db")
    assert newer.exit_code == 1
    assert "newer than this flowctl understands" in newer.stderr and "upgrade flowctl" in newer.stderr

    scheme = run("apply", "--registry", "mysql://db/x")
    assert scheme.exit_code == 1 and "unknown registry URL scheme" in scheme.stderr
    assert "Traceback" not in not_registry.output + newer.output + scheme.output


def test_apply_of_an_empty_directory_is_an_error(project: Path) -> None:
    Path("empty").mkdir()
    result = run("apply", "--entries", "empty")
    assert result.exit_code == 1
    assert "no entries found under empty" in result.stderr and "--entries" in result.stderr
    assert not DB.exists()


# -- registry list / show / history / rollback ----------------------------------------------------


def test_registry_list(project: Path) -> None:
    empty = run("registry", "list")
    assert empty.exit_code == 0 and "the registry is empty" in empty.stdout
    assert not DB.exists()
    run("apply")
    listed = run("registry", "list")
    assert listed.exit_code == 0
    assert [line.split()[:2] for line in lines(listed)] == [
        ["app:client", "temporal.client"], ["app:money", "library.lua"], ["app:order", "workflow.lua"],
        ["app:worker", "temporal.worker"]]
    body = json.loads(run("registry", "list", "--json").stdout)
    assert [r["id"] for r in body] == ["app:client", "app:money", "app:order", "app:worker"]
    assert "source" not in body[0]


def test_registry_show_current_and_old_revisions(project: Path) -> None:
    run("apply")
    old = json.loads(run("registry", "show", "app:order", "--json").stdout)
    write_tree(project, order=ORDER_LUA.replace('"1s"', '"2s"'))
    run("apply")

    current = run("registry", "show", "app:order")
    assert current.exit_code == 0
    assert 'time.sleep("2s")' in current.stdout and "(current)" in current.stdout
    assert "import:   money -> app:money" in current.stdout
    assert current.stdout.count("event #") == 2

    by_prefix = run("registry", "show", "app:order", "--revision", old["digest"][:8])
    assert by_prefix.exit_code == 0
    assert 'time.sleep("1s")' in by_prefix.stdout and "(current)" not in by_prefix.stdout.splitlines()[1]

    body = json.loads(run("registry", "show", "app:order", "--json").stdout)
    assert body["source"] == ORDER_LUA.replace('"1s"', '"2s"') and body["source_name"] == "order.lua"
    assert [r["current"] for r in body["revisions"]] == [False, True]
    assert body["libraries"] == {"app:money": old["libraries"]["app:money"]}

    unknown = run("registry", "show", "app:nope")
    assert unknown.exit_code == 1 and "app:nope is not in the registry" in unknown.stderr
    bad_ref = run("registry", "show", "app:order", "--revision", "0000000")
    assert bad_ref.exit_code == 1 and "has no revision 0000000" in bad_ref.stderr


def test_registry_history(project: Path) -> None:
    assert "no events" in run("registry", "history").stdout
    run("apply")
    write_tree(project, money="return {round = math.floor}\n")
    run("apply")
    every = run("registry", "history")
    assert every.exit_code == 0
    headers = [line for line in lines(every) if line.startswith("#")]
    assert [h.split()[0] for h in headers] == ["#2", "#1"]
    assert all(" apply by " in h for h in headers)
    of_worker = run("registry", "history", "app:worker")
    assert [line.split()[0] for line in lines(of_worker) if line.startswith("#")] == ["#1"]
    assert "app:worker created - -> " in of_worker.stdout and "app:money" not in of_worker.stdout
    limited = run("registry", "history", "--limit", "1", "--json")
    body = json.loads(limited.stdout)
    assert [e["event"] for e in body] == [2]
    changes = {c["id"]: c["action"] for c in body[0]["changes"]}
    assert changes == {"app:money": "changed", "app:order": "changed"}
    assert run("registry", "history", "--limit", "0").exit_code == 2  # usage error


def test_registry_rollback(project: Path) -> None:
    run("apply")
    first = json.loads(run("registry", "show", "app:order", "--json").stdout)["digest"]
    write_tree(project, order=ORDER_LUA.replace('"1s"', '"2s"'))
    run("apply")

    rolled = run("registry", "rollback", "app:order", first[:10])
    assert rolled.exit_code == 0, rolled.output
    assert rolled.stdout.startswith(f"app:order rolled back to {first[:12]} (was ")
    assert "as event #3" in rolled.stdout
    assert json.loads(run("registry", "show", "app:order", "--json").stdout)["digest"] == first
    history = json.loads(run("registry", "history", "app:order", "--json").stdout)
    assert [e["verb"] for e in history] == ["rollback", "apply", "apply"]
    with sqlite3.connect(DB) as raw:  # a rollback deletes nothing: both revisions are still stored
        assert raw.execute("SELECT count(*) FROM revisions WHERE entry_id = 'app:order'").fetchone()[0] == 2

    again = run("registry", "rollback", "app:order", first[:10])
    assert again.exit_code == 0 and "already at" in again.stdout
    assert events(DB) == 3
    # the tree still holds the newer revision: diff shows it as a pending change
    assert run("diff").exit_code == 1

    for args, message in [(("app:order", "xyz"), "not a revision digest"),
                          (("app:order", "ffffffff"), "has no revision ffffffff"),
                          (("app:nope", "ab"), "has never been applied")]:
        bad = run("registry", "rollback", *args)
        assert bad.exit_code == 1, args
        assert message in bad.stderr and "hint:" in bad.stderr
    assert run("registry", "rollback", "app:order").exit_code == 2  # missing REV: usage error


def test_rollback_brings_back_a_deleted_entry(project: Path) -> None:
    run("apply")
    digest = json.loads(run("registry", "show", "app:order", "--json").stdout)["digest"]
    write_tree(project, ENTRY_FILE.split("  - name: order")[0])
    run("apply", "--prune")
    rolled = run("registry", "rollback", "app:order", digest[:12])
    assert rolled.exit_code == 0 and "(was nothing (it was deleted))" in rolled.stdout
    assert "app:order" in run("registry", "list").stdout
    again = json.loads(run("registry", "rollback", "app:order", digest[:12], "--json").stdout)
    assert again == {"id": "app:order", "digest": digest, "event": None, "previous_digest": digest}


def test_rollback_json(project: Path) -> None:
    run("apply")
    first = json.loads(run("registry", "show", "app:money", "--json").stdout)["digest"]
    write_tree(project, money="return {round = math.floor}\n")
    run("apply")
    second = json.loads(run("registry", "show", "app:money", "--json").stdout)["digest"]
    result = run("registry", "rollback", "app:money", first[:8], "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"id": "app:money", "digest": first, "event": 3,
                                         "previous_digest": second}


def test_help_lists_the_registry_commands() -> None:
    top = run("--help").stdout
    assert "diff" in top and "apply" in top and "registry" in top
    sub = run("registry", "--help").stdout
    for command in ("list", "show", "history", "rollback"):
        assert command in sub

"""A damaged, read-only or deep registry gives a clear answer to every read command, on both stores.

Rows are damaged behind the store's back (its immutability triggers dropped first), as a hand
edit or a bad restore would; every command that reads them must say "damaged", name the revision
and the column, and exit 1 (``diff``: 2, its "invalid tree or error"), never crash.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import cli
from registry.loader import load_project
from registry.open_store import open_store
from registry.plan import compute_plan
from registry.revision import build_revisions
from registry.sqlite_store import SqliteRevisionStore
from registry.store import RegistryConflict, RegistryError
from tests.support.postgres import raw_execute
from tests.support.projects import write_project

#: (command, exit status) for every command that reads the registry's current revisions
READERS = [(["registry", "list"], 1), (["registry", "show", "app:order_workflow"], 1),
           (["diff", "--entries", "{entries}"], 2), (["apply", "--entries", "{entries}"], 1)]


def _applied(store_url: str, root: Path) -> Path:
    entries = write_project(root)
    result = CliRunner().invoke(cli.main, ["apply", "--entries", str(entries), "--registry", store_url])
    assert result.exit_code == 0, result.output
    return entries


def _drop_triggers(url: str) -> None:
    on = " ON revisions" if url.startswith("postgres") else ""
    for trigger in ("revisions_are_immutable", "revisions_are_kept"):
        raw_execute(url, f"DROP TRIGGER {trigger}{on}")


def _answers(url: str, entries: Path) -> list[tuple[int, str]]:
    found = []
    for args, _ in READERS:
        argv = [arg.replace("{entries}", str(entries)) for arg in args]
        result = CliRunner().invoke(cli.main, [*argv, "--registry", url], catch_exceptions=False)
        found.append((result.exit_code, result.stderr))
    return found


@pytest.mark.parametrize(("column", "value", "problem"), [
    ("libraries_json", "{bad", "has unreadable libraries_json"),
    ("imports_json", "[1]", "has unreadable imports_json (not a JSON object of strings)"),
    ("data_yaml", "[1, 2", "has unreadable data_yaml"),
    ("data_yaml", "- a list", "has unreadable data_yaml (not a YAML mapping)"),
    ("libraries_json", '{"app:pricing": "00ff"}', "imports app:pricing 00ff, which is missing"),
])
def test_a_damaged_revision_row_is_reported_by_every_reader(store_url: str, tmp_path: Path, column: str,
                                                            value: str, problem: str) -> None:
    entries = _applied(store_url, tmp_path)
    _drop_triggers(store_url)
    escaped = value.replace("'", "''")
    raw_execute(store_url, f"UPDATE revisions SET {column} = '{escaped}' WHERE entry_id = 'app:order_workflow'")
    for (exit_code, stderr), (args, expected) in zip(_answers(store_url, entries), READERS, strict=True):
        assert exit_code == expected, (args, stderr)
        assert "is damaged: revision " in stderr and "of app:order_workflow " + problem in stderr, (args, stderr)
        assert "hint: restore it from a backup" in stderr and "Traceback" not in stderr


def test_a_current_row_naming_a_missing_revision_is_damage_not_a_conflict(store_url: str, tmp_path: Path) -> None:
    entries = _applied(store_url, tmp_path)
    if store_url.startswith("postgres"):  # PostgreSQL enforces the reference: drop it first, as a bad restore may
        raw_execute(store_url, "ALTER TABLE current DROP CONSTRAINT current_entry_id_digest_fkey")
    raw_execute(store_url, "UPDATE current SET digest = 'ffffffffffffffff' WHERE entry_id = 'app:order_workflow'")
    for (exit_code, stderr), (args, expected) in zip(_answers(store_url, entries), READERS, strict=True):
        assert exit_code == expected, (args, stderr)
        assert "is damaged: the current revision of app:order_workflow (ffffffffffff) is missing" in stderr, stderr
        assert "changed since the plan" not in stderr


def _chain(root: Path, length: int) -> Path:
    """A workflow importing a chain of ``length`` libraries, each importing the next."""
    lines = ['version: "1.0"', "namespace: app", "entries:", "  - {name: client, kind: temporal.client}",
             "  - {name: worker, kind: temporal.worker, client: client}"]
    for i in range(length):
        imports = f", imports: {{next: lib{i + 1}}}" if i + 1 < length else ""
        lines.append(f"  - {{name: lib{i}, kind: library.lua, source: 'file://lib.lua'{imports}}}")
    lines.append("  - {name: wf, kind: workflow.lua, source: 'file://wf.lua', imports: {first: lib0}, "
                 "meta: {temporal: {workflow: {worker: worker}}}}")
    root.mkdir(parents=True, exist_ok=True)
    (root / "app.yaml").write_text("\n".join(lines) + "\n")
    (root / "lib.lua").write_text("return {}\n")
    (root / "wf.lua").write_text("return {main = function() return 1 end}\n")
    return root


def test_a_chain_of_1000_imports_builds_stores_and_reads_back(store_url: str, tmp_path: Path) -> None:
    project = load_project([_chain(tmp_path / "entries", 1000)])
    assert project.diagnostics == []
    revisions = build_revisions(project)
    assert len(revisions["app:wf"].libraries) == 1000
    with open_store(store_url) as store:
        store.apply(compute_plan(revisions, store), actor="tester")
    with open_store(store_url, create=False) as fresh:  # nothing cached: every library is read from rows
        workflow = fresh.current("app:wf")
        assert workflow is not None and workflow.digest == revisions["app:wf"].digest
        assert set(workflow.libraries) == {f"app:lib{i}" for i in range(1000)}
        assert len(fresh.list_current()) == 1003
    stored = raw_execute(store_url, "SELECT count(*) FROM revisions")[0][0]
    assert stored == 1003  # each library once, not once per entry that imports it


def test_a_stored_import_cycle_is_damage(tmp_path: Path) -> None:
    url = str(tmp_path / "registry.db")
    _applied(url, tmp_path)
    _drop_triggers(url)
    money = raw_execute(url, "SELECT digest FROM revisions WHERE entry_id = 'app:pricing'")[0][0]
    raw_execute(url, f"UPDATE revisions SET libraries_json = '{{\"app:pricing\": \"{money}\"}}' "
                     "WHERE entry_id = 'app:money'")
    with open_store(url, create=False) as store, pytest.raises(RegistryError, match="which imports it back"):
        store.current("app:order_workflow")


def _flowctl_on_read_only(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run flowctl with ``directory`` read-only: chmod for a normal user; a read-only bind mount for root
    (root ignores permissions), in a private mount namespace so nothing outside the process sees it."""
    command = [sys.executable, "-m", "cli", *args]
    repo = Path(cli.__file__).resolve().parent
    env = {**os.environ, "PYTHONPATH": str(repo)}
    if os.geteuid() != 0:
        for path in directory.iterdir():
            path.chmod(0o444)
        directory.chmod(0o555)
        try:
            return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
        finally:
            directory.chmod(0o755)
    quoted = " ".join(f"'{part}'" for part in command)
    script = (f"mount --bind '{directory}' '{directory}' && mount -o remount,bind,ro '{directory}' && "
              f"exec {quoted}")
    return subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, env=env,
                          timeout=120)


def test_a_registry_on_read_only_media_is_read(tmp_path: Path) -> None:
    store_dir = tmp_path / "media"
    url = str(store_dir / "registry.db")
    entries = _applied(url, tmp_path)
    listed = _flowctl_on_read_only(store_dir, "registry", "list", "--registry", url)
    assert listed.returncode == 0, listed.stderr
    assert "app:order_workflow" in listed.stdout and "workflow.lua" in listed.stdout
    shown = _flowctl_on_read_only(store_dir, "registry", "show", "app:order_workflow", "--registry", url)
    assert shown.returncode == 0 and "(current)" in shown.stdout, shown.stderr
    assert not any(p.name.endswith(("-wal", "-shm")) for p in store_dir.iterdir())  # nothing was written
    (entries / "order_workflow.lua").write_text("return {main = function() return 2 end}\n")
    diffed = _flowctl_on_read_only(store_dir, "diff", "--entries", str(entries), "--registry", url)
    assert diffed.returncode == 1 and "app:order_workflow" in diffed.stdout, diffed.stderr
    applied = _flowctl_on_read_only(store_dir, "apply", "--entries", str(entries), "--registry", url)
    assert applied.returncode == 1, applied.stderr
    assert f"cannot open registry {url}" in applied.stderr or f"cannot write registry {url}" in applied.stderr
    assert "not a flowctl registry" not in applied.stderr and "Traceback" not in applied.stderr


def test_registry_paths_no_file_system_can_have(tmp_path: Path) -> None:
    runner = CliRunner()
    too_long = runner.invoke(cli.main, ["registry", "list", "--registry", str(tmp_path / ("x" * 300))])
    assert too_long.exit_code == 1 and "cannot open registry" in too_long.stderr
    assert "File name too long" in too_long.stderr
    (tmp_path / "file").write_text("")
    through_a_file = runner.invoke(cli.main, ["registry", "list", "--registry", str(tmp_path / "file" / "r.db")])
    assert through_a_file.exit_code == 1 and "Not a directory" in through_a_file.stderr


def test_a_locked_registry_at_open_is_busy_not_foreign(tmp_path: Path) -> None:
    """The first query failing for another reason than "not a database" says that reason."""
    path = tmp_path / "registry.db"
    open_store(str(path)).close()
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("PRAGMA locking_mode = EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(RegistryConflict, match="is locked by another writer") as info:
            SqliteRevisionStore(path, create=False, busy_timeout=0.1)
        assert "not a flowctl registry" not in str(info.value)
    finally:
        holder.close()
    with open_store(str(path), create=False) as store:  # the lock gone, it opens
        assert store.list_current() == []

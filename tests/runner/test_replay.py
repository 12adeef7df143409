"""``flowctl replay``: real histories from the dev server, exported by the temporal CLI and by the SDK.

One module-scoped set of runs of the example order workflow provides the histories; each
test replays them against the unchanged tree (OK), a changed tree (the first diverging
command with its Lua file:line), and with bad input (a corrupt file is reported, the
others still replay).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from temporalio.client import Client

import cli
from registry.revision import Revision
from runner.client.start import start_workflow
from runner.dev.binaries import find_temporal_cli
from runner.replay import load_history_dir, replay_histories
from runner.revision_source import ProjectRevisionSource
from runner.temporal.worker import serve
from tests.support.paths import REPO


def copy_entries(target: Path) -> Path:
    shutil.copytree(REPO / "entries", target, ignore=shutil.ignore_patterns("*_test.lua", "golden"))
    return target


def on_queue(source: ProjectRevisionSource, queue: str) -> ProjectRevisionSource:
    revisions: list[Revision] = []
    for rev in source.entries():
        if rev.kind == "temporal.worker":
            rev = dataclasses.replace(rev, data={**rev.data, "task_queue": queue})
        revisions.append(rev)
    return ProjectRevisionSource(revisions)


@dataclasses.dataclass
class Recorded:
    tree: Path
    histories: Path
    workflow_ids: list[str]
    address: str


async def record_histories(client: Client, address: str, tree: Path, out: Path) -> list[str]:
    """Run the order workflow (with and without the flowctl memo) and export each history twice."""
    queue = f"replay-{uuid.uuid4().hex[:10]}"
    source = on_queue(ProjectRevisionSource.from_paths([tree]), queue)
    stop, ready = asyncio.Event(), asyncio.Event()
    clients = {rev.entry_id: client for rev in source.entries("temporal.client")}
    task = asyncio.create_task(serve(source, stop=stop, clients=clients, ready=ready))
    await asyncio.wait_for(ready.wait(), 30)
    ids = []
    try:
        for n, total in enumerate((42, -1)):
            started = await start_workflow(client, source, "app:order_workflow",
                                           {"id": f"o-{n}", "total": total, "ship_after": "1s"},
                                           workflow_id=f"replay-order-{n}-{uuid.uuid4().hex[:6]}")
            await started.handle.result()
            ids.append(started.workflow_id)
        # started by a plain Temporal client: no flowctl memo, so the worker records its pin itself
        handle = await client.start_workflow("app:order_workflow", {"id": "o-9", "total": 7, "ship_after": "1s"},
                                             id=f"replay-plain-{uuid.uuid4().hex[:6]}", task_queue=queue)
        await handle.result()
        ids.append(handle.id)
    finally:
        stop.set()
        await task
    out.mkdir()
    temporal = str(find_temporal_cli())
    for workflow_id in ids:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        (out / f"{workflow_id}.sdk.json").write_text(history.to_json(), encoding="utf-8")
        shown = subprocess.run([temporal, "workflow", "show", "--workflow-id", workflow_id, "--output", "json",
                                "--address", address, "--namespace", client.namespace],
                               check=True, capture_output=True, text=True, timeout=30)
        (out / f"{workflow_id}.cli.json").write_text(shown.stdout, encoding="utf-8")
    return ids


@pytest.fixture(scope="module")
async def recorded(dev_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    base = tmp_path_factory.mktemp("replay")
    tree = copy_entries(base / "entries")
    client = await dev_server.client()
    ids = await record_histories(client, dev_server.address, tree, base / "histories")
    return Recorded(tree=tree, histories=base / "histories", workflow_ids=ids, address=dev_server.address)


def changed_tree(recorded: Recorded, target: Path) -> Path:
    """The order workflow with its timer moved before the charge: old histories must diverge."""
    tree = copy_entries(target)
    source = tree / "order_workflow.lua"
    text = source.read_text(encoding="utf-8")
    text = text.replace('    local payment, err = funcs.call("app:charge_payment", {amount = order.total})\n',
                        '    time.sleep("5s")\n'
                        '    local payment, err = funcs.call("app:charge_payment", {amount = order.total})\n')
    source.write_text(text, encoding="utf-8")
    return tree


async def test_both_export_formats_replay_ok_on_the_unchanged_tree(recorded: Recorded) -> None:
    loaded = load_history_dir(recorded.histories)
    assert len(loaded) == 6 and all(h.error is None for h in loaded), [h.error for h in loaded]
    cli_export = json.loads(next(recorded.histories.glob("*.cli.json")).read_text(encoding="utf-8"))
    sdk_export = json.loads(next(recorded.histories.glob("*.sdk.json")).read_text(encoding="utf-8"))
    assert "events" in cli_export and "events" in sdk_export
    results = await replay_histories(ProjectRevisionSource.from_paths([recorded.tree]), loaded)
    assert [(r.status, r.workflow_type) for r in results] == [("ok", "app:order_workflow")] * 6, \
        [r.to_dict() for r in results]


async def test_a_changed_workflow_reports_the_first_diverging_command(recorded: Recorded, tmp_path: Path) -> None:
    tree = changed_tree(recorded, tmp_path / "entries")
    results = await replay_histories(ProjectRevisionSource.from_paths([tree]), load_history_dir(recorded.histories))
    assert {r.status for r in results} == {"diverged"}, [r.to_dict() for r in results]
    for result in results:
        assert "`activity app:charge_payment`" in result.message, result.message
        assert "`timer 5s`" in result.message, result.message
        assert result.where == "order_workflow.lua:5", result.where


def test_cli_replay_exit_codes_and_bad_files(recorded: Recorded, tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(cli.main, ["replay", "--histories", str(recorded.histories), "--entries", str(recorded.tree)])
    assert ok.exit_code == 0, ok.output
    assert ok.output.count("OK ") == 6 and "6 replayed OK" in ok.output

    histories = tmp_path / "histories"
    shutil.copytree(recorded.histories, histories)
    (histories / "corrupt.json").write_text('{"events": [', encoding="utf-8")
    (histories / "not-a-history.json").write_text('{"hello": 1}', encoding="utf-8")
    changed = changed_tree(recorded, tmp_path / "entries")
    bad = runner.invoke(cli.main, ["replay", "--histories", str(histories), "--entries", str(changed), "--json"])
    assert bad.exit_code == 1, bad.output
    body = json.loads(bad.stdout)
    statuses = {Path(h["name"]).name: h["status"] for h in body["histories"]}
    assert statuses.pop("corrupt.json") == "error" and statuses.pop("not-a-history.json") == "error"
    assert set(statuses.values()) == {"diverged"} and len(statuses) == 6
    errors = {Path(h["name"]).name: h["message"] for h in body["histories"] if h["status"] == "error"}
    assert "corrupt.json:1:" in errors["corrupt.json"] and "not valid JSON" in errors["corrupt.json"]
    assert 'no "events" list' in errors["not-a-history.json"]
    assert "Traceback" not in bad.output
    text = runner.invoke(cli.main, ["replay", "--histories", str(histories), "--entries", str(changed)])
    assert text.exit_code == 1
    assert "DIVERGED" in text.stdout and "         at order_workflow.lua:5" in text.stdout
    assert "ERROR    " in text.stdout and "0 replayed OK, 8 failed" in text.stdout
    assert "workflow.version" in text.stderr

    usage = runner.invoke(cli.main, ["replay", "--entries", str(recorded.tree)])
    assert usage.exit_code == 2 and "--histories" in usage.output
    empty = tmp_path / "empty"
    empty.mkdir()
    none = runner.invoke(cli.main, ["replay", "--histories", str(empty), "--entries", str(recorded.tree)])
    assert none.exit_code == 1 and "no *.json histories" in none.output


def test_cli_replay_fetches_by_workflow_id_and_query_from_the_registry(recorded: Recorded, tmp_path: Path) -> None:
    runner = CliRunner()
    registry = f"sqlite:///{tmp_path / 'registry.db'}"
    env = {**os.environ, "TEMPORAL_ADDRESS": recorded.address}
    applied = runner.invoke(cli.main, ["apply", "--entries", str(recorded.tree), "--registry", registry], env=env)
    assert applied.exit_code == 0, applied.output
    first = recorded.workflow_ids[0]
    by_id = runner.invoke(cli.main, ["replay", "--workflow-id", first, "--registry", registry], env=env)
    assert by_id.exit_code == 0, by_id.output
    assert f"OK       {first} (app:order_workflow" in by_id.output
    query = " OR ".join(f"WorkflowId = '{wid}'" for wid in recorded.workflow_ids)
    by_query = runner.invoke(cli.main, ["replay", "--query", query, "--registry", registry, "--json"], env=env)
    assert by_query.exit_code == 0, by_query.output
    names = sorted(h["name"] for h in json.loads(by_query.stdout)["histories"])
    assert names == sorted(recorded.workflow_ids)
    missing = runner.invoke(cli.main, ["replay", "--workflow-id", "no-such-workflow", "--registry", registry],
                            env=env)
    assert missing.exit_code == 1 and "cannot fetch workflow 'no-such-workflow'" in missing.output

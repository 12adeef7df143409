"""``flowctl replay`` of a history whose workflow task fails: the Lua error and its file:line, never a traceback.

Two real histories from the dev server: a run whose task failed (stuck) and a completed one.
Replayed on the unchanged tree, the stuck one is OK with a note (its task fails as recorded);
replayed on a tree whose code now fails, the completed one is an ERROR naming the Lua error.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from runner.replay import load_history_dir, replay_histories
from runner.revision_source import ProjectRevisionSource
from tests.support.paths import REPO
from tests.support.worker import lua_worker

ENTRIES = REPO / "tests" / "runner" / "entries" / "d_replay"


async def _failed_task(handle: WorkflowHandle[Any, Any]) -> None:
    """Wait until the run's history records a failed workflow task."""
    for _ in range(100):
        history = await handle.fetch_history()
        if any(e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED for e in history.events):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the workflow task never failed")


@pytest.fixture(scope="module")
async def histories(dev_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``stuck.json`` (its task failed at flow.lua:5) and ``done.json`` (completed)."""
    out = tmp_path_factory.mktemp("histories")
    async with lua_worker(await dev_server.client(), ENTRIES) as project:
        stuck = await project.start("app:flow", {"fail": True})
        await _failed_task(stuck)
        (out / "stuck.json").write_text(json.dumps((await stuck.fetch_history()).to_json_dict()))
        await stuck.terminate(reason="test done")
        done = await project.start("app:flow", {"fail": False})
        assert await done.result() == {"ok": True}
        (out / "done.json").write_text(json.dumps((await done.fetch_history()).to_json_dict()))
    return out


def _failing_tree(target: Path) -> Path:
    shutil.copytree(ENTRIES, target)
    flow = target / "flow.lua"
    flow.write_text(flow.read_text().replace("if input.fail then", "if true then"))
    return target


async def test_a_recorded_task_failure_replays_ok_with_a_note(histories: Path) -> None:
    source = ProjectRevisionSource.from_paths([ENTRIES])
    done, stuck = await replay_histories(source, load_history_dir(histories))
    assert (done.status, done.message, done.where) == ("ok", "", None)
    assert stuck.status == "ok" and stuck.where == "flow.lua:5", stuck
    assert "fails on this code too" in stuck.message and "attempt to index a nil value" in stuck.message


async def test_a_task_that_now_fails_is_an_error_with_the_lua_message(histories: Path, tmp_path: Path) -> None:
    source = ProjectRevisionSource.from_paths([_failing_tree(tmp_path / "tree")])
    done, _ = await replay_histories(source, load_history_dir(histories))
    assert (done.status, done.where) == ("error", "flow.lua:5"), done
    assert done.message == "attempt to index a nil value (local 'missing')"


def test_cli_replay_prints_no_traceback(histories: Path, tmp_path: Path) -> None:
    tree = _failing_tree(tmp_path / "tree")
    done = subprocess.run([sys.executable, "-m", "cli", "replay", "--histories", str(histories), "--entries",
                           str(tree)], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "WARN" not in done.stderr, done.stderr
    assert "attempt to index a nil value (local 'missing')\n         at flow.lua:5" in done.stdout, done.stdout

"""``flowctl replay --jobs N``: the same report and exit code on N worker processes as in one process.

The histories are real runs of the example order workflow (recorded as tests/runner/test_replay.py
does), copied many times so that every worker process gets several batches.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import cli
import runner.replay
from registry.errors import FlowError
from runner.revision_source import ProjectRevisionSource
from tests.runner.test_replay import Recorded, changed_tree, copy_entries, record_histories
from tests.support.paths import REPO

#: the process pools the tests' replays started (max_workers of each)
POOLS: list[int] = []


class CountedPool(ProcessPoolExecutor):
    """The real pool, counted."""

    def __init__(self, max_workers: int, **kwargs: Any) -> None:
        POOLS.append(max_workers)
        super().__init__(max_workers, **kwargs)


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process for as few as 4 histories (the default waits for 64 each), counted."""
    monkeypatch.setattr(runner.replay, "_PER_PROCESS", 4)
    monkeypatch.setattr(runner.replay, "ProcessPoolExecutor", CountedPool)
    POOLS.clear()


@pytest.fixture(scope="module")
async def recorded(dev_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    base = tmp_path_factory.mktemp("replay-jobs")
    tree = copy_entries(base / "entries")
    client = await dev_server.client()
    ids = await record_histories(client, dev_server.address, tree, base / "histories")
    return Recorded(tree=tree, histories=base / "histories", workflow_ids=ids, address=dev_server.address)


def many(recorded: Recorded, target: Path, copies: int) -> Path:
    """``copies`` copies of every recorded history (names sorted by copy, then by file)."""
    target.mkdir()
    for n in range(copies):
        for path in sorted(recorded.histories.glob("*.json")):
            shutil.copy(path, target / f"{n:03d}-{path.name}")
    return target


def replay(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli.main, ["replay", *args], env=env)


def test_jobs_2_reports_what_jobs_1_reports(recorded: Recorded, tmp_path: Path) -> None:
    histories = many(recorded, tmp_path / "histories", 5)
    tree = str(recorded.tree)
    one = replay("--histories", str(histories), "--entries", tree, "--jobs", "1", "--json")
    two = replay("--histories", str(histories), "--entries", tree, "--jobs", "2", "--json")
    assert one.exit_code == two.exit_code == 0, (one.output, two.output)
    assert POOLS == [1], "--jobs 2: this process and one spawned process; --jobs 1: no pool"
    assert json.loads(two.stdout) == json.loads(one.stdout)
    body = json.loads(two.stdout)
    assert [Path(h["name"]).name for h in body["histories"]] == sorted(p.name for p in histories.glob("*.json"))
    assert {h["status"] for h in body["histories"]} == {"ok"} and len(body["histories"]) == 30
    text_one = replay("--histories", str(histories), "--entries", tree, "--jobs", "1")
    text_two = replay("--histories", str(histories), "--entries", tree, "--jobs", "2")
    assert text_two.stdout == text_one.stdout and "30 replayed OK" in text_two.stdout


def test_jobs_2_still_fails_on_a_bad_history_and_a_diverging_one(recorded: Recorded, tmp_path: Path) -> None:
    histories = many(recorded, tmp_path / "histories", 2)
    (histories / "001-corrupt.json").write_text('{"events": [', encoding="utf-8")
    changed = str(changed_tree(recorded, tmp_path / "entries"))
    one = replay("--histories", str(histories), "--entries", changed, "--jobs", "1", "--json")
    two = replay("--histories", str(histories), "--entries", changed, "--jobs", "2", "--json")
    assert one.exit_code == two.exit_code == 1, (one.output, two.output)
    assert POOLS == [1]
    assert json.loads(two.stdout) == json.loads(one.stdout)
    statuses = {Path(h["name"]).name: h for h in json.loads(two.stdout)["histories"]}
    corrupt = statuses.pop("001-corrupt.json")
    assert corrupt["status"] == "error" and "not valid JSON" in corrupt["message"]
    assert {h["status"] for h in statuses.values()} == {"diverged"} and len(statuses) == 12
    assert {h["where"] for h in statuses.values()} == {"order_workflow.lua:5"}
    text = replay("--histories", str(histories), "--entries", changed, "--jobs", "2")
    assert text.exit_code == 1 and "0 replayed OK, 13 failed" in text.stdout
    assert "Traceback" not in text.output


def test_jobs_2_on_the_registrys_revisions(recorded: Recorded, tmp_path: Path) -> None:
    registry = f"sqlite:///{tmp_path / 'registry.db'}"
    env = {**os.environ, "TEMPORAL_ADDRESS": recorded.address}
    applied = CliRunner().invoke(cli.main, ["apply", "--entries", str(recorded.tree), "--registry", registry], env=env)
    assert applied.exit_code == 0, applied.output
    histories = many(recorded, tmp_path / "histories", 2)
    one = replay("--histories", str(histories), "--registry", registry, "--jobs", "1", "--json", env=env)
    two = replay("--histories", str(histories), "--registry", registry, "--jobs", "2", "--json", env=env)
    assert one.exit_code == two.exit_code == 0, (one.output, two.output)
    assert POOLS == [1]
    assert json.loads(two.stdout) == json.loads(one.stdout)
    assert len(json.loads(two.stdout)["histories"]) == 12
    # a fresh command forks its process with the registry open: that process opens its own
    more = many(recorded, tmp_path / "more", 11)
    fresh = fresh_replay("--histories", str(more), "--registry", registry, "--jobs", "2", "--json", env=env)
    assert fresh.returncode == 0 and f"start method: {'fork' if sys.platform == 'linux' else 'spawn'}" in fresh.stderr
    assert {h["status"] for h in json.loads(fresh.stdout)["histories"]} == {"ok"}
    assert len(json.loads(fresh.stdout)["histories"]) == 66


def test_a_few_histories_are_replayed_in_this_process(recorded: Recorded, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner.replay, "_PER_PROCESS", 64)
    few = replay("--histories", str(recorded.histories), "--entries", str(recorded.tree), "--jobs", "2")
    assert few.exit_code == 0 and "6 replayed OK" in few.stdout, few.output
    assert POOLS == []


#: ``flowctl replay`` in a fresh process (single-threaded, as from a shell), saying which start method its pool used
FRESH = ("import sys, cli, runner.replay as r; method = r._start_method; "
         "r._start_method = lambda: print('start method:', found := method(), file=sys.stderr) or found; cli.run()")


def fresh_replay(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", FRESH, "replay", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env=env)


def test_a_fresh_command_forks_its_processes_and_reports_what_jobs_1_reports(recorded: Recorded,
                                                                             tmp_path: Path) -> None:
    # 66 histories: one more process with the default _PER_PROCESS (64); a diverging tree and a corrupt file
    histories = many(recorded, tmp_path / "histories", 11)
    (histories / "005-corrupt.json").write_text('{"events": [', encoding="utf-8")
    changed = str(changed_tree(recorded, tmp_path / "entries"))
    one = fresh_replay("--histories", str(histories), "--entries", changed, "--jobs", "1", "--json")
    two = fresh_replay("--histories", str(histories), "--entries", changed, "--jobs", "2", "--json")
    assert one.returncode == two.returncode == 1, (one.stderr, two.stderr)
    assert "start method" not in one.stderr, "--jobs 1 replays in its own process"
    assert f"start method: {'fork' if sys.platform == 'linux' else 'spawn'}" in two.stderr, two.stderr
    assert json.loads(two.stdout) == json.loads(one.stdout)
    statuses = [h["status"] for h in json.loads(two.stdout)["histories"]]
    assert len(statuses) == 67 and statuses.count("error") == 1 and statuses.count("diverged") == 66
    assert "Traceback" not in two.stderr


def test_ctrl_c_stops_a_replay_on_two_processes(recorded: Recorded, tmp_path: Path) -> None:
    # Ctrl-C in a terminal: SIGINT to the command and its replay process, once that one runs (it used to hang:
    # asyncio.run's teardown cancelled this process's replay after the SDK's own tasks)
    histories = many(recorded, tmp_path / "histories", 100)
    command = subprocess.Popen([sys.executable, "-c", "import cli; cli.run()", "replay", "--histories", str(histories),
                                "--entries", str(recorded.tree), "--jobs", "2"], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        while command.poll() is None and not children(command.pid):
            threading.Event().wait(0.05)
        threading.Event().wait(0.5)  # the replay under way in both processes
        os.killpg(command.pid, signal.SIGINT)
        out, err = command.communicate(timeout=120)
    finally:
        command.kill()
    assert command.returncode == 1 and "Aborted!" in err and "Traceback" not in err, (out, err)
    assert "replayed OK" not in out


def children(pid: int) -> list[str]:
    listed = subprocess.run(["ps", "-A", "-o", "pid=,ppid="], capture_output=True, text=True).stdout.split("\n")
    return [line.split()[0] for line in listed if line.split()[1:] == [str(pid)]]


def test_a_process_with_threads_spawns_its_replay_processes() -> None:
    # a forked child would inherit the other threads' locks (the Temporal runtime's, a driver's): spawn then
    fresh = subprocess.run([sys.executable, "-c", "import runner.replay as r; print(r._start_method())"],
                           cwd=REPO, capture_output=True, text=True, timeout=60)
    assert fresh.stdout.strip() == ("fork" if sys.platform == "linux" else "spawn"), fresh.stderr
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert runner.replay._start_method() == "spawn"
    finally:
        stop.set()
        other.join()


def test_batches_keep_the_order_and_shrink_towards_the_end() -> None:
    histories = [Path(f"{n:04d}.json") for n in range(1000)]
    batches = runner.replay._batches(histories, 2)
    assert [path for batch in batches for path in batch] == histories
    sizes = [len(batch) for batch in batches]
    assert max(sizes) == runner.replay._BATCH and sizes == sorted(sizes, reverse=True) and sizes[-1] == 1


def test_jobs_must_be_positive(recorded: Recorded) -> None:
    usage = replay("--histories", str(recorded.histories), "--entries", str(recorded.tree), "--jobs", "0")
    assert usage.exit_code == 2 and "--jobs" in usage.output


async def test_a_replay_process_that_stops_is_a_clear_error(recorded: Recorded, tmp_path: Path) -> None:
    # the spawned process cannot open this registry: its initializer fails and the pool breaks while this
    # process is replaying a batch; it finishes that batch (a replay cancelled midway would hang) and stops
    pool = runner.replay._Pool(2, None, "nosuchscheme://registry")
    source = ProjectRevisionSource.from_paths([recorded.tree])
    histories = sorted(many(recorded, tmp_path / "histories", 20).glob("*.json"))
    with pytest.raises(FlowError) as raised:
        await asyncio.wait_for(pool.replay(source, histories), 120)
    assert "a replay process stopped" in raised.value.message and "--jobs 1" in (raised.value.hint or "")
    assert POOLS == [1]

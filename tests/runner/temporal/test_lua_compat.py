"""Existing Lua idioms run unchanged (issue 19): a weak-keyed class registry, `table.unpack or unpack`,
`io and io.stdout` guards and a captured `math.randomseed` called with a seed, in a workflow and in
the activity it calls — under `flowctl test`, on a real worker, and replayed 20 times identically.

The project is tests/cases/valid/lua_compat_idioms (test_cases.py validates it with 0 diagnostics).
"""

from __future__ import annotations

from typing import Any

from temporalio.testing import WorkflowEnvironment

from runner.testing import run_tests
from tests.support.paths import REPO
from tests.support.replay import REPLAYS, assert_replays
from tests.support.worker import lua_worker

PROJECT = REPO / "tests" / "cases" / "valid" / "lua_compat_idioms"
INPUT = {"numbers": [1, 2, 3, 4, 5, 6], "seed": 42}


def check(out: dict[str, Any]) -> None:
    assert out["classes"] == 2 and out["mode"] == "k" and out["output"] == "log" and out["sum"] == 21
    assert out["is_animal"] and out["is_dog"] and out["is_object"] and out["dog_is_animal"]
    assert sorted(out["shuffled"]) == [1, 2, 3, 4, 5, 6]


async def test_the_idioms_pass_their_flowctl_test(time_skipping_env: WorkflowEnvironment) -> None:
    report = await run_tests([PROJECT], env=time_skipping_env)
    assert report.ok and report.counts() == {"passed": 1, "failed": 0, "deselected": 0}, report.to_dict()


async def test_the_idioms_run_on_a_worker_and_replay_twenty_times(dev_server: Any) -> None:
    client = await dev_server.client()
    async with lua_worker(client, PROJECT) as project:
        handles = [await project.start("app:wf", {**INPUT, "seed": seed}) for seed in (42, 42, 7)]
        results = [await handle.result() for handle in handles]
        histories = [await handle.fetch_history() for handle in handles]
        source = project.source
    for result in results:
        check(result["workflow"])
        check(result["activity"])
        # the explicit seed reseeds the run's generator: the same order in the workflow and the activity
        assert result["workflow"]["shuffled"] == result["activity"]["shuffled"]
    assert results[0] == results[1]                  # seed 42 twice: the same run
    assert REPLAYS == 20
    await assert_replays(source, *histories)

"""Histories of real runs replay in fresh Lua interpreters with 0 divergences, 20 times each (docs/sandbox.md).

Each replay builds a new LuaSandbox, so string hashing is seeded anew every time: without
flowctl's ordered pairs/next the same code would take another branch and diverge.
"""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.client import WorkflowHistory

from runner.revision_source import ProjectRevisionSource
from tests.support.paths import ENTRIES
from tests.support.replay import assert_replays, replayer
from tests.support.worker import LuaProject, lua_worker, revisions_on_queue

#: (entry, input, signals to send) of one run
Start = tuple[str, Any, list[tuple[str, Any]]]


async def histories_of(project: LuaProject, starts: list[Start]) -> list[WorkflowHistory]:
    """Run each (entry, input, signals) to completion and return the histories."""
    found = []
    for entry_id, value, signals in starts:
        handle = await project.start(entry_id, value)
        for name, payload in signals:
            await handle.signal(name, payload)
        await handle.result()
        found.append(await handle.fetch_history())
    return found


@pytest.mark.slow
async def test_example_histories_replay_twenty_times_without_divergence(dev_server: Any) -> None:
    client = await dev_server.client()
    async with lua_worker(client, ENTRIES / "basic") as basic:
        histories = await histories_of(basic, [
            ("app:order_workflow", {"id": "o-1", "total": 42}, []),
            ("app:order_workflow", {"id": "o-2", "total": -1}, []),
            ("app:context_workflow", None, []),
        ])
        basic_source = basic.source
    async with lua_worker(client, ENTRIES / "process") as process:
        process_histories = await histories_of(process, [
            ("app:approval", {"id": "o-3"}, [("noise", {"x": 1}), ("approve", None)]),
            ("app:jobs", {}, [("add_job", {"id": 1}), ("add_job", {"id": 2}), ("exit", None)]),
            ("app:concurrent", {"workers": 3, "jobs": 6}, []),
            ("app:status_timeout", {"wait": "200ms"}, []),
            ("app:parent", {}, []),
        ])
        process_source = process.source
    await assert_replays(basic_source, *histories)
    await assert_replays(process_source, *process_histories)


async def test_a_changed_workflow_is_detected_as_nondeterministic(dev_server: Any) -> None:
    client = await dev_server.client()
    async with lua_worker(client, ENTRIES / "basic") as project:
        handle = await project.start("app:order_workflow", {"id": "o-9", "total": 7})
        await handle.result()
        history = await handle.fetch_history()
    # the same history still replays on the code that made it...
    same = await replayer(project.source).replay_workflow(history, raise_on_replay_failure=False)
    assert same.replay_failure is None
    # ...but not on a revision whose two activity calls are swapped (replayed as `flowctl replay` does:
    # against the new code, not the revision pinned in the run's memo)
    swapped = ProjectRevisionSource(revisions_on_queue([ENTRIES / "swapped"], project.task_queue))
    changed = await replayer(swapped, follow_pins=False).replay_workflow(history, raise_on_replay_failure=False)
    assert changed.replay_failure is not None
    assert "nondetermin" in str(changed.replay_failure).lower()


def test_replays_run_in_fresh_interpreters_with_differently_seeded_hashes() -> None:
    """The premise: raw next() order over string keys differs between Lua interpreters."""
    import lupa.lua54 as lua54

    orders = set()
    for _ in range(10):
        runtime = lua54.LuaRuntime()
        orders.add(runtime.execute(
            "local t = {} for i = 1, 50 do t['key' .. i] = i end "
            "local keys = {} for k in next, t do keys[#keys + 1] = k end return table.concat(keys, ',')"))
    assert len(orders) > 1, "Lua 5.4 seeds string hashing per interpreter"

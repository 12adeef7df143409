"""The loyalty actor of reference/000 (entries/loyalty_account.lua): points, tiers, guests, cancel, and
continue-as-new (every N messages, or at a history length) with no message lost under a burst of 500.
Every run of each execution chain then replays 20 times with 0 divergences."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory

from runner.client.start import start_workflow
from tests.support.paths import EXAMPLES
from tests.support.replay import assert_replays
from tests.support.worker import LuaProject, lua_worker


@pytest.fixture(scope="module")
async def project(dev_server: Any) -> AsyncIterator[LuaProject]:
    async with lua_worker(await dev_server.client(), EXAMPLES) as served:
        yield served


async def eventually(check: Any, timeout: float = 60.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await check()
        except AssertionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)


async def execution_chain(client: Client, workflow_id: str) -> list[WorkflowHistory]:
    """Every run of ``workflow_id``, oldest first, found by following each run back to the one it continued."""
    histories: list[WorkflowHistory] = []
    run_id = (await client.get_workflow_handle(workflow_id).describe()).run_id
    while run_id:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        histories.insert(0, history)
        run_id = history.events[0].workflow_execution_started_event_attributes.continued_execution_run_id
    return histories


def assert_continued_as_new(chain: list[WorkflowHistory]) -> None:
    for history in chain[:-1]:
        assert history.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    assert chain[-1].events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED


@pytest.mark.slow
async def test_burst_of_500_messages_across_continue_as_new_loses_none(project: LuaProject) -> None:
    client = project.client
    account_id = f"loyalty-{uuid.uuid4().hex[:8]}"
    # a start message (in the first run's memo) must be counted once, not again after each continue-as-new
    started = await start_workflow(client, project.source, "app:loyalty_account",
                                   {"customer": {"id": account_id, "name": "Ada"}, "new_customer": True,
                                    "signals_per_run": 50},
                                   workflow_id=account_id, options={"id_conflict_policy": "fail"},
                                   messages=[("add_points", {"points": 7})])
    handle = started.handle
    # 500 messages as fast as the client can send them, concurrently
    await asyncio.gather(*(handle.signal("add_points", {"points": 3}) for _ in range(500)))

    async def all_counted() -> dict[str, Any]:
        status: dict[str, Any] = await client.get_workflow_handle(account_id).query("status")
        assert status["points"] == 7 + 500 * 3, status
        return status

    status = await eventually(all_counted)
    assert status["tier"] == "gold"
    assert status["runs"] >= 10, "50 messages per run: at least ten runs for 501 messages"

    await client.get_workflow_handle(account_id).signal("invite_guest", {"guest": f"{account_id}-guest"})
    await client.get_workflow_handle(account_id).signal("cancel", None)
    result = await client.get_workflow_handle(account_id).result()
    assert result["points"] == 1507 and result["tier"] == "gold"

    chain = await execution_chain(client, account_id)
    assert len(chain) == result["runs"] >= 10, "every run continued as new into the next"
    assert_continued_as_new(chain)
    guest = client.get_workflow_handle(f"loyalty-{account_id}-guest")
    status = await guest.query("status")
    assert status["active"] is True and status["points"] == 0, "the invited guest has an account of its own"
    await guest.terminate("test over")
    await assert_replays(project.source, *chain, await guest.fetch_history())


async def test_a_long_history_continues_as_new(project: LuaProject) -> None:
    client = project.client
    account_id = f"loyalty-{uuid.uuid4().hex[:8]}"
    started = await start_workflow(client, project.source, "app:loyalty_account",
                                   {"customer": {"id": account_id}, "history_limit": 40},
                                   workflow_id=account_id)
    for batch in range(4):
        await asyncio.gather(*(started.handle.signal("add_points", {"points": batch + 1}) for _ in range(50)))
    await started.handle.signal("cancel", None)
    result = await started.handle.result()
    assert result["points"] == 50 * (1 + 2 + 3 + 4) and result["tier"] == "silver"

    chain = await execution_chain(client, account_id)
    assert len(chain) == result["runs"] >= 2
    assert_continued_as_new(chain)
    for history in chain[:-1]:
        # the loop checks workflow.history_length() before each message: a run ends only past the limit
        assert len(history.events) > 40
    await assert_replays(project.source, *chain)

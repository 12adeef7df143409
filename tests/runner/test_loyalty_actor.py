"""The loyalty actor of reference/000 (entries/loyalty_account.lua): points, tiers, guests, cancel, and
continue-as-new every N messages with no message lost under a burst of 500."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from conftest import lua_worker
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner

from runner.starter import start_workflow
from runner.workflow import make_workflow_class

EXAMPLE = Path(__file__).resolve().parents[2] / "entries"


async def eventually(check: Any, timeout: float = 60.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await check()
        except AssertionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)


async def test_burst_of_500_messages_across_continue_as_new_loses_none(dev_server: Any) -> None:
    client = await dev_server.client()
    async with lua_worker(client, EXAMPLE) as project:
        account_id = f"loyalty-{uuid.uuid4().hex[:8]}"
        # a start message (in the first run's memo) must be counted once, not again after each
        # continue-as-new
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
            assert status["points"] == 1507, status
            return status

        status = await eventually(all_counted)
        assert status["tier"] == "gold"
        assert status["runs"] >= 10, "50 messages per run: at least ten runs for 501 messages"

        await client.get_workflow_handle(account_id).signal("invite_guest", {"guest": f"{account_id}-guest"})
        await client.get_workflow_handle(account_id).signal("cancel", None)
        result = await client.get_workflow_handle(account_id).result()
        assert result["points"] == 1507 and result["tier"] == "gold"

        runs = [wf async for wf in client.list_workflows(f"WorkflowId = '{account_id}'")]
        assert len(runs) == result["runs"] >= 10, "every run continued as new into the next"
        guest = await client.get_workflow_handle(f"loyalty-{account_id}-guest").query("status")
        assert guest["active"] is True and guest["points"] == 0, "the invited guest has an account of its own"

        histories: list[WorkflowHistory] = []
        for run in runs[:4]:
            histories.append(await client.get_workflow_handle(account_id, run_id=run.run_id).fetch_history())

        async def each() -> AsyncIterator[WorkflowHistory]:
            for history in histories:
                yield history

        replayer = Replayer(workflows=[make_workflow_class(project.source)],
                            workflow_runner=UnsandboxedWorkflowRunner())
        for _ in range(20):
            replayed = await replayer.replay_workflows(each(), raise_on_replay_failure=False)
            assert {k: str(v) for k, v in replayed.replay_failures.items()} == {}
        await client.get_workflow_handle(f"loyalty-{account_id}-guest").terminate("test over")

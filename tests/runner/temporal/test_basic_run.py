"""A workflow.lua entry runs end to end on the real dev server: activities, timers, futures, errors."""

from __future__ import annotations

from typing import Any

from tests.support.paths import ENTRIES
from tests.support.worker import lua_worker


async def test_order_workflow_completes_with_activity_results(dev_server: Any) -> None:
    async with lua_worker(await dev_server.client(), ENTRIES / "basic") as project:
        result = await project.run("app:order_workflow", {"id": "o-1", "total": 42})
    assert result["status"] == "completed"
    assert result["payment_id"].startswith("pay-")
    assert result["second"] == 2
    assert result["v"] == 2, "a new run takes the newest workflow.version"
    assert result["elapsed"] >= 1000, "time.sleep('1s') is a durable timer of at least a second"
    assert result["info"] == "app:order_workflow"


async def test_activity_error_reaches_lua_with_its_kind(dev_server: Any) -> None:
    async with lua_worker(await dev_server.client(), ENTRIES / "basic") as project:
        result = await project.run("app:order_workflow", {"id": "o-2", "total": -1})
    assert result == {"status": "failed", "error": "INVALID: amount must be positive", "kind": "INVALID"}


async def test_context_reaches_the_workflow_and_its_activities(dev_server: Any) -> None:
    async with lua_worker(await dev_server.client(), ENTRIES / "basic") as project:
        result = await project.run("app:context_workflow", context={"tenant": "t-1", "request_id": "r-9"})
    assert result == {"workflow_tenant": "t-1", "activity_sees": {"tenant": "t-1", "request_id": "r-9"}}

"""The shared server fixtures really start Temporal and answer requests."""

from __future__ import annotations

from typing import Any

from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.testing import WorkflowEnvironment


async def test_dev_server_answers(dev_server: Any) -> None:
    client = await dev_server.client()
    info = await client.workflow_service.get_system_info(GetSystemInfoRequest())
    assert info.server_version, "the dev server must report its version"
    assert client.namespace == "default"


async def test_time_skipping_env_skips_time(time_skipping_env: WorkflowEnvironment) -> None:
    assert time_skipping_env.supports_time_skipping
    before = await time_skipping_env.get_current_time()
    await time_skipping_env.sleep(3600)
    after = await time_skipping_env.get_current_time()
    assert (after - before).total_seconds() >= 3600

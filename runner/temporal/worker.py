"""``flowctl worker``: serve the registry's workflows and activities on real Temporal task queues.

For each selected ``temporal.worker`` entry (all of them when none is named) the worker
connects with the entry's ``temporal.client`` and runs one temporalio Worker per
(client, task queue), each registering ONE dynamic workflow and ONE dynamic activity
that dispatch by type to registry revisions. New applies are picked up while running
(the revision source polls the store), worker entries included: the WorkerPool starts
the task queue of a new entry, drains a removed one and restarts a changed one (the
plan comes from worker_plan). SIGTERM/SIGINT stop polling and drain: running activities
get ``drain_timeout`` to finish, then are cancelled.

``flowctl worker`` runs this in a child process of a supervisor (runner.temporal.supervisor),
which restarts it if it dies and kills it when a Lua call overruns (runner.temporal.watchdog:
``run_worker(calls=...)`` records each call for it). ``flowctl dev`` serves in-process.

Log lines are logfmt on stderr (``ts=… level=info event=worker.started task_queue=…``),
easy for people to read and for log shippers to parse.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.worker import Interceptor, UnsandboxedWorkflowRunner, Worker

from registry.errors import FlowError
from runner.client.connect import client_settings, connect
from runner.revision_source import RegistryFollower, StoreRevisionSource, require_entry
from runner.sandbox.failures import FlowFailure
from runner.sandbox.quotas import worker_maxima
from runner.sandbox.runtime import ACTIVITY_LIMITS, WORKFLOW_LIMITS, SandboxLimits
from runner.temporal.activities import make_activity
from runner.temporal.interceptors import ContextInterceptor
from runner.temporal.metrics import DEFAULT_METRICS_HOST, metrics_address, prometheus_runtime
from runner.temporal.watchdog import (
    DEFAULT_LUA_CALL_TIMEOUT,
    CallTable,
    WatchedWorkflowRunner,
    attach,
    count_watchdog_kills,
)
from runner.temporal.worker_plan import (
    CLIENT_KIND,
    WORKER_KIND,
    ReloadPlan,
    WorkerChange,
    WorkerConfigError,
    WorkerSpec,
    connection_fields,
    plan_reload,
    select_workers,
)
from runner.temporal.workflow import make_workflow_class
from runner.worker_logs import configure_logging, core_logging, log_event

__all__ = ["WorkerConfigError", "WorkerPool", "WorkerSpec", "log_event", "plan_workers", "run_worker", "serve"]

DEFAULT_DRAIN_TIMEOUT = timedelta(seconds=30)


@dataclass
class _Served:
    """A temporalio Worker this process runs, and the task running it."""

    spec: WorkerSpec
    worker: Worker
    task: asyncio.Task[None]


class WorkerPool:
    """The temporalio Workers of one ``flowctl worker``, by (client, task queue): started, drained, restarted.

    A worker that fails to start (or stops on a fatal error) is logged and left out; the
    others keep serving, and the next registry change tries it again.
    """

    def __init__(self, source: StoreRevisionSource, *, executor: ThreadPoolExecutor,
                 clients: Mapping[str, Client] | None = None, drain_timeout: timedelta = DEFAULT_DRAIN_TIMEOUT,
                 workflow_limits: SandboxLimits = WORKFLOW_LIMITS, activity_limits: SandboxLimits = ACTIVITY_LIMITS,
                 runtime: Runtime | None = None, interceptors: Sequence[Interceptor] = ()) -> None:
        self.source = source
        #: added to every temporalio Worker's (e.g. runner.temporal.tracing's)
        self.interceptors = tuple(interceptors)
        self.executor = executor
        self.drain_timeout = drain_timeout
        self.runtime = runtime
        self.workflow_limits = workflow_limits
        #: client entry ID -> connection (given ones are never re-checked against the registry)
        self.clients: dict[str, Client] = dict(clients or {})
        #: client entry ID -> the connection_fields this process connected it with
        self.connected_with: dict[str, dict[str, Any]] = {}
        self.serving: dict[tuple[str, str], _Served] = {}
        #: workers stopping in the background, by key: a new worker on that key waits for it (Temporal
        #: refuses two workers of one client on one task queue)
        self._draining: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._workflow_classes: dict[str, type] = {}
        self._activity = make_activity(source, executor=executor, limits=activity_limits)
        self._warned: dict[str, dict[str, Any]] = {}
        self._missing: set[str] = set()

    async def start_all(self, specs: Sequence[WorkerSpec]) -> None:
        """Start the first worker set; any failure stops what started and raises (nothing half-served)."""
        for spec in specs:
            await self._client(spec.client_id)
        try:
            for spec in specs:
                await self._start(spec)
                log_event("worker.started", task_queue=spec.task_queue, workers=",".join(spec.worker_ids),
                          client=spec.client_id)
        except BaseException:
            await self.shutdown()
            raise

    async def follow_registry(self, worker_ids: Sequence[str]) -> None:
        """Forever (cancel to stop): when the registry's worker or client entries change, reconcile."""
        interval = self.source.poll_interval if math.isfinite(self.source.poll_interval) else 1.0
        seen = self._registry_state()
        while True:
            await asyncio.sleep(interval)
            try:
                await asyncio.to_thread(self.source.refresh)  # a store query: off the event loop
                state = self._registry_state()
                if state != seen:
                    seen = state
                    await self.reconcile(self.plan(worker_ids))
            except Exception as error:  # keep serving what runs; the next change tries again
                log_event("worker.reload_failed", level="error", error=error)

    def plan(self, worker_ids: Sequence[str] = ()) -> ReloadPlan:
        """What the registry's current worker entries ask of this process."""
        return plan_reload([served.spec for served in self.serving.values()], self.source.entries(WORKER_KIND),
                           worker_ids, clients={c.entry_id: c for c in self.source.entries(CLIENT_KIND)},
                           connected=self.connected_with)

    async def reconcile(self, plan: ReloadPlan) -> None:
        """Carry out a reload plan: drain, restart and start workers, log what needs a process restart."""
        self._warned = {c.client_id: self._warned[c.client_id] for c in plan.clients if c.client_id in self._warned}
        for client in plan.clients:
            now = connection_fields(self.source.entry(client.client_id))
            if self._warned.get(client.client_id) != now:  # once per new setting, not on every apply
                self._warned[client.client_id] = now
                log_event("client.changed", level="warning", client=client.client_id, fields=",".join(client.fields),
                          msg=client.message)
        if plan.error is not None:
            log_event("worker.reload_refused", level="error", error=plan.error.message, hint=plan.error.hint,
                      msg="the workers keep serving as before")
            return
        for worker_id in sorted(set(plan.missing) - self._missing):  # once per removal
            log_event("worker.missing", level="warning", worker=worker_id,
                      msg="named by --worker but no longer in the registry; its task queue is drained")
        self._missing = set(plan.missing)
        starting = []
        for change in plan.changes:
            spec = change.spec
            if change.action == "stop":
                self._drain(spec.key, reason=change.reason)
            elif change.action == "update":
                if spec.key in self.serving:
                    self.serving[spec.key].spec = spec
                log_event("worker.updated", task_queue=spec.task_queue, workers=",".join(spec.worker_ids),
                          reason=change.reason)
            else:
                if change.action == "restart":
                    self._drain(spec.key, reason=change.reason, quiet=True)
                starting.append(self._start_logged(change))
        await asyncio.gather(*starting)  # each waits only for the drain of its own task queue
        if not self.serving:
            log_event("worker.idle", level="warning", msg="no task queue left to serve; waiting for an apply")

    async def shutdown(self) -> None:
        """Drain every worker (running activities get the drain timeout) and wait for all of them."""
        served = list(self.serving.values())
        self.serving.clear()
        await asyncio.gather(*(self._stop(s) for s in served), *self._draining.values(), return_exceptions=True)

    async def _start_logged(self, change: WorkerChange) -> None:
        """Start (or restart) one worker; a failure is logged and leaves the others serving."""
        spec = change.spec
        try:
            await self._client(spec.client_id)
            await self._start(spec)
        except Exception as error:
            log_event("worker.failed", level="error", task_queue=spec.task_queue, workers=",".join(spec.worker_ids),
                      error=_error_text(error), hint=error.hint if isinstance(error, FlowError) else None,
                      msg="the other task queues keep serving; the next registry change tries again")
            return
        event = "worker.restarted" if change.action == "restart" else "worker.started"
        log_event(event, task_queue=spec.task_queue, workers=",".join(spec.worker_ids), client=spec.client_id,
                  reason=change.reason)

    async def _client(self, client_id: str) -> Client:
        client = self.clients.get(client_id)
        if client is None:
            revision = require_entry(self.source.entry, client_id,
                                     hint="apply the temporal.client entry the worker names (`flowctl apply`)")
            client = await connect(revision, runtime=self.runtime)
            self.clients[client_id] = client
            self.connected_with[client_id] = connection_fields(revision)
            log_event("client.connected", client=client_id, target=client_settings(revision).describe())
        return client

    async def _start(self, spec: WorkerSpec) -> None:
        """Start polling ``spec``'s task queue; returns once the server accepted the worker."""
        draining = self._draining.get(spec.key)
        if draining is not None:  # a restart, or a queue served again: the old worker must be gone first
            await asyncio.wait([draining])
        try:
            worker = Worker(self.clients[spec.client_id], task_queue=spec.task_queue,
                            workflows=[self._workflow_class(spec.versioning)],
                            activities=[self._activity], activity_executor=self.executor,
                            workflow_runner=UnsandboxedWorkflowRunner(),
                            interceptors=[ContextInterceptor(), *self.interceptors],
                            unsandboxed_workflow_runner=WatchedWorkflowRunner(self._lua_file),
                            graceful_shutdown_timeout=self.drain_timeout,
                            **dict(spec.options))  # type: ignore[arg-type]
        except (TypeError, ValueError) as error:
            raise WorkerConfigError(f"cannot build the worker for task queue {spec.task_queue!r}: {error}",
                                    hint=f"check worker_options of {', '.join(spec.worker_ids)}") from None
        served = _Served(spec, worker, asyncio.create_task(worker.run(), name=f"flowctl-worker:{spec.task_queue}"))
        self.serving[spec.key] = served
        while not worker.is_running and not served.task.done():  # is_running: the namespace check passed
            await asyncio.sleep(0.02)
        if served.task.done():
            self.serving.pop(spec.key, None)
            failure = None if served.task.cancelled() else served.task.exception()
            raise WorkerConfigError(f"cannot serve task queue {spec.task_queue!r} on {spec.client_id}: "
                                    f"{_error_text(failure)}",
                                    hint="check the client entry's namespace, address and credentials")
        served.task.add_done_callback(lambda _: self._on_exit(served))

    def _on_exit(self, served: _Served) -> None:
        """A worker whose run ended while it was still meant to serve: log it and leave it out."""
        if self.serving.get(served.spec.key) is not served:
            return  # drained or restarted on purpose
        self.serving.pop(served.spec.key)
        failure = None if served.task.cancelled() else served.task.exception()
        log_event("worker.failed", level="error", task_queue=served.spec.task_queue,
                  workers=",".join(served.spec.worker_ids), error=_error_text(failure) or "stopped unexpectedly",
                  msg="the other task queues keep serving; the next registry change starts it again")

    def _drain(self, key: tuple[str, str], *, reason: str, quiet: bool = False) -> None:
        """Stop polling ``key``'s task queue now and let its running activities finish, in the background."""
        served = self.serving.pop(key, None)
        if served is None:
            return
        if not quiet:
            log_event("worker.draining", task_queue=served.spec.task_queue, workers=",".join(served.spec.worker_ids),
                      reason=reason, timeout=f"{self.drain_timeout.total_seconds():g}s")
        task = asyncio.create_task(self._stop(served, reason=None if quiet else reason))
        self._draining[key] = task
        task.add_done_callback(lambda _: self._draining.pop(key) if self._draining.get(key) is task else None)

    async def _stop(self, served: _Served, *, reason: str | None = None) -> None:
        await served.worker.shutdown()
        with contextlib.suppress(Exception):
            await served.task
        if reason is not None:
            log_event("worker.stopped", task_queue=served.spec.task_queue, workers=",".join(served.spec.worker_ids),
                      reason=reason)

    def _workflow_class(self, versioning: str) -> type:
        # auto_upgrade workers run every workflow task on the newest revision (safe only with
        # workflow.version guards); pinned ones keep each run on the revision in its memo.
        if versioning not in self._workflow_classes:
            self._workflow_classes[versioning] = make_workflow_class(
                self.source, follow_pins=versioning == "pinned", limits=self.workflow_limits)
        return self._workflow_classes[versioning]

    def _lua_file(self, workflow_type: str) -> str:
        """The Lua file of a workflow type, for the watchdog's reports (the type itself if unknown)."""
        try:
            return self.source.workflow(workflow_type).source_name or workflow_type
        except FlowFailure:
            return workflow_type

    def _registry_state(self) -> list[tuple[str, str]]:
        return [(rev.entry_id, rev.digest) for kind in (WORKER_KIND, CLIENT_KIND) for rev in self.source.entries(kind)]


def _error_text(error: BaseException | None) -> str:
    """An error for a log line: the SDK core appends a Rust backtrace to some messages, which helps nobody."""
    if error is None:
        return ""
    text = error.message if isinstance(error, FlowError) else str(error)
    return text.split("\n\nStack backtrace:", 1)[0].strip()


def plan_workers(source: StoreRevisionSource, worker_ids: Sequence[str] = ()) -> list[WorkerSpec]:
    """Which temporalio Workers to run for the named worker entries (all when none named)."""
    workers = source.entries(WORKER_KIND)
    specs, missing = select_workers(workers, worker_ids)
    if missing:
        known = ", ".join(rev.entry_id for rev in workers) or "none"
        raise WorkerConfigError(f"no temporal.worker entry {', '.join(missing)} in the registry (known: {known})",
                                hint="apply the entries first (`flowctl apply`) or fix --worker")
    if not specs:
        raise WorkerConfigError("the registry has no temporal.worker entries to serve",
                                hint="apply your entries first: `flowctl apply` (or run `flowctl dev`)")
    return specs


async def serve(source: StoreRevisionSource, worker_ids: Sequence[str] = (), *,
                stop: asyncio.Event, clients: Mapping[str, Client] | None = None,
                drain_timeout: timedelta = DEFAULT_DRAIN_TIMEOUT,
                ready: asyncio.Event | None = None,
                workflow_limits: SandboxLimits = WORKFLOW_LIMITS,
                activity_limits: SandboxLimits = ACTIVITY_LIMITS,
                runtime: Runtime | None = None, interceptors: Sequence[Interceptor] = ()) -> None:
    """Run the workers until ``stop`` is set, then drain them.

    While running, the worker set follows the registry (checked every ``source.poll_interval``
    seconds): new task queues start, removed ones drain, changed ones restart.
    ``clients`` overrides connections by client entry ID; ``*_limits`` bound the sandboxes of
    workflow runs and of activity calls.
    """
    specs = plan_workers(source, worker_ids)
    max_activities = max((s.options.get("max_concurrent_activities", 100) for s in specs), default=100)
    with ThreadPoolExecutor(max_workers=max(4, min(max_activities, 64)),
                            thread_name_prefix="flowctl-activity") as executor:
        pool = WorkerPool(source, executor=executor, clients=clients, drain_timeout=drain_timeout,
                          workflow_limits=workflow_limits, activity_limits=activity_limits, runtime=runtime,
                          interceptors=interceptors)
        await pool.start_all(specs)
        follower = asyncio.create_task(pool.follow_registry(worker_ids))
        try:
            if ready is not None:
                ready.set()
            await stop.wait()
        finally:
            follower.cancel()
            await asyncio.wait([follower])
            log_event("worker.draining", timeout=f"{drain_timeout.total_seconds():g}s")
            await pool.shutdown()
        log_event("worker.stopped")


def run_worker(store: Any, worker_ids: Sequence[str] = (), *, python_paths: Iterable[Path] = (),
               poll_interval: float = 1.0, drain_timeout: timedelta = DEFAULT_DRAIN_TIMEOUT,
               metrics_port: int | None = None, calls: CallTable | None = None,
               lua_call_timeout: float = DEFAULT_LUA_CALL_TIMEOUT,
               watchdog_kills: Sequence[dict[str, Any]] = (), otel: bool = False,
               metrics_host: str = DEFAULT_METRICS_HOST, log_format: str = "logfmt",
               max_memory: int | None = None, max_instructions: int | None = None) -> None:
    """Serve in this process until SIGTERM/SIGINT; ``store`` is a RevisionStore.

    ``max_memory``/``max_instructions``: how far an entry's ``limits:`` may raise its sandbox's heap
    and instruction budget (and the most any sandbox gets; runner.sandbox.quotas.worker_maxima).
    ``log_format``: ``logfmt`` or ``json`` (runner.worker_logs; the core's logs are forwarded there).

    A RegistryFollower keeps the revisions current (pushed notices on PostgreSQL) and logs registry
    outages; ``otel`` exports OpenTelemetry spans (runner.temporal.tracing).

    ``calls``: the supervisor's call table (runner.temporal.watchdog), where each Lua call is
    recorded with its allowance: ``lua_call_timeout`` seconds per workflow activation, as much
    more per Lua activity attempt as its instruction budget is larger. ``watchdog_kills``: the
    supervisor's kills so far, counted in the metrics.
    """
    limits = [worker_maxima(base, max_memory, max_instructions) for base in (WORKFLOW_LIMITS, ACTIVITY_LIMITS)]
    # a Lua call may run as much longer as the most instructions an entry may ask for is larger
    workflow_scale, activity_scale = (max((lim.max_instructions or lim.instructions)
                                          / WORKFLOW_LIMITS.instructions, 1.0) for lim in limits)
    attach(calls, workflow_allowance=lua_call_timeout * workflow_scale,
           activity_allowance=lua_call_timeout * activity_scale)
    for path in python_paths:
        resolved = str(Path(path).resolve())
        if resolved not in sys.path:
            sys.path.insert(0, resolved)  # function.python handlers import from here
    configure_logging(log_format=log_format)
    source = StoreRevisionSource(store, poll_interval=poll_interval)
    runtime = prometheus_runtime(metrics_port, metrics_host, core_logging())
    if metrics_port is not None:
        count_watchdog_kills(runtime, watchdog_kills)
        log_event("metrics.serving", address=f"http://{metrics_address(metrics_port, metrics_host)}/metrics")
    interceptors: list[Interceptor] = []
    if otel:
        from runner.temporal.tracing import configure_tracing, tracing_interceptor
        configure_tracing()
        interceptors.append(tracing_interceptor(source))
        log_event("tracing.exporting", service=os.environ.get("OTEL_SERVICE_NAME") or "flowctl-worker",
                  endpoint=os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "default (localhost:4317)")
    follower = RegistryFollower(source, report=_registry_reporter(runtime if metrics_port else None)).start()
    try:
        asyncio.run(_serve_until_signalled(source, worker_ids, drain_timeout, runtime, calls, interceptors, limits))
    finally:
        follower.stop()


def _registry_reporter(runtime: Runtime | None) -> Callable[..., None]:
    """The follower's events as log lines, and as the ``flowctl_registry_available`` gauge (1 up, 0 away)."""
    gauge = None if runtime is None else runtime.metric_meter.create_gauge(
        "flowctl_registry_available", "1 while the worker reaches the registry, 0 during an outage")
    if gauge is not None:
        gauge.set(1)

    def report(event: str, level: str, **fields: Any) -> None:
        log_event(event, level=level, **fields)
        if gauge is not None and event in ("registry.unavailable", "registry.recovered"):
            gauge.set(0 if event == "registry.unavailable" else 1)
    return report


async def _serve_until_signalled(source: StoreRevisionSource, worker_ids: Sequence[str],
                                 drain_timeout: timedelta, runtime: Runtime | None, calls: CallTable | None,
                                 interceptors: Sequence[Interceptor] = (),
                                 limits: Sequence[SandboxLimits] = (WORKFLOW_LIMITS, ACTIVITY_LIMITS)) -> None:
    stop, ready = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _on_signal, stop, signum)
    serving = asyncio.create_task(serve(source, worker_ids, stop=stop, drain_timeout=drain_timeout, ready=ready,
                                        runtime=runtime, interceptors=interceptors,
                                        workflow_limits=limits[0], activity_limits=limits[1]))
    waiter = asyncio.create_task(ready.wait())
    try:
        await asyncio.wait([serving, waiter], return_when=asyncio.FIRST_COMPLETED)
        if ready.is_set() and calls is not None:
            calls.mark_ready()  # the supervisor restarts a child that served, not one that cannot start
        await serving
    finally:
        waiter.cancel()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


def _on_signal(stop: asyncio.Event, signum: int) -> None:
    if stop.is_set():
        return
    log_event("worker.signal", signal=signal.Signals(signum).name)
    stop.set()

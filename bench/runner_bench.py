"""Benchmark: the Lua workflow runner against a native Python temporalio workflow, on one real dev server.

One run, side by side (run it by hand; it is never a timed test):

- completions/s: N runs of the same workflow (3 activities + 1 short timer) per variant, with
  bounded concurrency, in alternating rounds (Lua, native, Lua, native) so background load hits
  both; ratio Lua / native (target >= 1.0), and the p50 / p99 start-to-completion latency of
  those runs (the start call to the result). The native workflow uses the SDK's default
  *sandboxed* runner; the Lua one is the real ``flowctl worker`` (runner.temporal.worker.serve).
- replay CPU per history: histories of those runs replayed many times with
  ``temporalio.worker.Replayer`` (Lua: make_workflow_class + UnsandboxedWorkflowRunner; native:
  the default sandboxed runner); process CPU time per history, ratio Lua / native (target <= 1.0).
- memory per cached run (measured first, right after the warm-up): K runs of each variant held
  open on a long timer in one worker (``max_cached_workflows`` >= K); RSS growth (over all K and
  over the second half: the marginal cost, target Lua / native <= 1.0) and Python allocations
  (tracemalloc) per run, plus the Lua heaps (sum of LuaSandbox.memory_used()); target <= 64 KiB
  per Lua run.

The activities are the SAME three ``async def`` functions in both variants: the native worker
registers them with ``@activity.defn``, the Lua entries are ``function.python`` entries whose
``handler`` names them (so the Lua side also pays flowctl's dynamic-activity dispatch).
Both variants run in this one process (worker and client), against one headless dev server.

    python bench/runner_bench.py            # ~2-3 minutes on 2 cores
    python bench/runner_bench.py --quick    # ~1 minute
    python bench/runner_bench.py --only memory --cached 200   # the memory part only (~40 s)
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import os
import sys
import tempfile
import time
import tracemalloc
import types
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity, workflow

# ---------------------------------------------------------------------------- the workload

ACTIVITY_MODULE = "flowctl_runner_bench_activities"
TIMER = "50ms"
HOLD = "1h"


@activity.defn(name="bench:step_a")
async def step_a(order: dict[str, Any]) -> dict[str, Any]:
    """Trivial activity 1 of 3 (the same function object serves both variants)."""
    return {"id": order["id"], "total": order["total"], "a": 1}


@activity.defn(name="bench:step_b")
async def step_b(value: dict[str, Any]) -> dict[str, Any]:
    """Trivial activity 2 of 3."""
    return {**value, "b": 2}


@activity.defn(name="bench:step_c")
async def step_c(value: dict[str, Any]) -> dict[str, Any]:
    """Trivial activity 3 of 3."""
    return {**value, "c": 3}


@workflow.defn(name="bench-native-order")
class NativeOrder:
    """The native twin of order.lua below: a, b, timer, c."""

    @workflow.run
    async def run(self, order: dict[str, Any]) -> dict[str, Any]:
        options: dict[str, Any] = {"start_to_close_timeout": timedelta(minutes=10)}
        a = await workflow.execute_activity("bench:step_a", order, **options)
        b = await workflow.execute_activity("bench:step_b", a, **options)
        await asyncio.sleep(3600 if order.get("wait") == HOLD else 0.05)
        c: dict[str, Any] = await workflow.execute_activity("bench:step_c", b, **options)
        return c


ORDER_LUA = """\
-- The benchmark workflow: two activities, a short durable timer, a third activity.
local funcs = require("funcs")
local time = require("time")

local function main(order)
    local a, err = funcs.call("bench:step_a", order)
    if err then return nil, err end
    local b, err_b = funcs.call("bench:step_b", a)
    if err_b then return nil, err_b end
    time.sleep(order.wait or "TIMER")
    local c, err_c = funcs.call("bench:step_c", b)
    if err_c then return nil, err_c end
    return c
end

return { main = main }
""".replace("TIMER", TIMER)

APP_YAML = """\
version: "1.0"
namespace: bench
entries:
  - name: client
    kind: temporal.client
    address: {address}
  - name: worker
    kind: temporal.worker
    client: bench:client
    task_queue: {task_queue}
    worker_options: {{max_cached_workflows: {cache}}}
  - name: order
    kind: workflow.lua
    source: file://order.lua
    modules: [funcs, time]
    meta: {{temporal: {{workflow: {{worker: bench:worker}}}}}}
{activities}"""

ACTIVITY_YAML = """\
  - name: {name}
    kind: function.python
    handler: {module}:{name}
    meta: {{temporal: {{activity: {{worker: bench:worker}}}}}}
"""


def _activity_module() -> None:
    """Make the activity functions importable by name for the function.python entries."""
    module = types.ModuleType(ACTIVITY_MODULE)
    module.step_a = step_a  # type: ignore[attr-defined]
    module.step_b = step_b  # type: ignore[attr-defined]
    module.step_c = step_c  # type: ignore[attr-defined]
    sys.modules[ACTIVITY_MODULE] = module


# ---------------------------------------------------------------------------- measuring


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def _malloc_in_use() -> int:
    """Bytes the C allocator has handed out and not got back (glibc; 0 elsewhere).

    Lua heaps, lua_States, the Rust core's state and large Python objects; unlike RSS it
    does not hide growth in memory freed by an earlier phase.
    """
    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
    except (AttributeError, OSError):
        return 0
    mallinfo2.restype = _MallInfo2
    info = mallinfo2()
    return int(info.uordblks + info.hblkhd)


def _cpu_of(pid: int | None) -> float:
    """CPU seconds (user + system) used so far by another process (the dev server)."""
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Variant:
    """One side of the comparison: how to start a run, and what was measured for it."""

    name: str
    start: Callable[[str, dict[str, Any]], Awaitable[Any]]
    replay: Callable[[list[Any]], Awaitable[None]]
    seconds: float = 0.0
    completed: int = 0
    worker_cpu: float = 0.0
    server_cpu: float = 0.0
    histories: list[Any] = field(default_factory=list)
    replay_cpu: float = 0.0
    replayed: int = 0
    memory: dict[str, float] = field(default_factory=dict)
    #: start-to-completion seconds of each run (the start call to its result)
    latencies: list[float] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.completed / self.seconds if self.seconds else 0.0

    def latency(self, percentile: float) -> float:
        """The start-to-completion time (seconds) below which ``percentile`` % of the runs finished."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * percentile / 100))]


async def _bounded(count: int, concurrency: int, job: Callable[[int], Awaitable[None]]) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            await job(i)

    await asyncio.gather(*(one(i) for i in range(count)))


async def completions(variant: Variant, count: int, concurrency: int, server_pid: int | None,
                      keep_histories: int) -> None:
    """Run ``count`` workflows to completion; add wall time, CPU and a few histories to ``variant``."""
    handles: list[Any] = []

    async def job(i: int) -> None:
        started = time.perf_counter()
        handle = await variant.start(f"bench-{variant.name}-{uuid.uuid4().hex[:10]}",
                                     {"id": f"o-{i}", "total": i + 1})
        await handle.result()
        variant.latencies.append(time.perf_counter() - started)
        handles.append(handle)

    gc.collect()
    wall, cpu, server = time.perf_counter(), time.process_time(), _cpu_of(server_pid)
    await _bounded(count, concurrency, job)
    variant.seconds += time.perf_counter() - wall
    variant.worker_cpu += time.process_time() - cpu
    variant.server_cpu += _cpu_of(server_pid) - server
    variant.completed += count
    for handle in handles[:max(0, keep_histories - len(variant.histories))]:
        variant.histories.append(await handle.fetch_history())


async def replays(variant: Variant, times: int) -> None:
    """Replay every kept history ``times`` times; add the process CPU time to ``variant``."""
    gc.collect()
    cpu = time.process_time()
    await variant.replay(variant.histories * times)
    variant.replay_cpu += time.process_time() - cpu
    variant.replayed += len(variant.histories) * times


async def cached_memory(variant: Variant, client: Any, count: int, concurrency: int,
                        lua_heaps: Callable[[], tuple[int, int, int]] | None) -> list[str]:
    """Hold ``count`` runs open on a long timer; record memory growth per run. Returns their ids.

    The runs are started in two halves. ``rss`` is the growth over all of them; ``rss_marginal``
    the growth over the second half only: what one more cached run costs a worker that already
    holds many. The first half's RSS growth hides memory an earlier phase freed (the warm-up,
    the completions, the other variant's terminated runs) and the held runs reuse, a discount
    that depends on the order of the variants and on ``count``, not on the run.
    """
    from temporalio.api.enums.v1 import EventType

    ids = [f"bench-hold-{variant.name}-{uuid.uuid4().hex[:10]}" for _ in range(count)]
    gc.collect()
    tracemalloc.start()
    rss_before, malloc_before = _rss(), _malloc_in_use()
    traced_before, own_before = tracemalloc.get_traced_memory()[0], tracemalloc.get_tracemalloc_memory()
    _, _, sandboxes_before = lua_heaps() if lua_heaps else (0, 0, 0)

    async def start(i: int) -> None:
        await variant.start(ids[i], {"id": f"h-{i}", "total": 1, "wait": HOLD})

    async def timer_started(i: int) -> None:
        while True:
            history = await client.get_workflow_handle(ids[i]).fetch_history()
            if any(e.event_type == EventType.EVENT_TYPE_TIMER_STARTED for e in history.events):
                return
            await asyncio.sleep(0.2)

    async def hold(first: int, last: int) -> int:
        """Start runs ``first`` to ``last - 1``, wait until each holds on its timer; the RSS then."""
        await _bounded(last - first, concurrency, lambda i: start(first + i))
        await _bounded(last - first, concurrency, lambda i: timer_started(first + i))
        await asyncio.sleep(0.5)  # the last workflow task completions settle
        gc.collect()
        return _rss() - tracemalloc.get_tracemalloc_memory()  # tracemalloc's bookkeeping is not the runs'

    half = count // 2
    rss_half = await hold(0, half)
    rss_all = await hold(half, count)
    traced = tracemalloc.get_traced_memory()[0] - traced_before
    own = tracemalloc.get_tracemalloc_memory() - own_before
    rss, in_use = rss_all + own_before - rss_before, _malloc_in_use() - malloc_before - own
    tracemalloc.stop()
    variant.memory = {"rss": rss / count, "rss_marginal": (rss_all - rss_half) / (count - half),
                      "python": traced / count, "malloc": in_use / count}
    if lua_heaps:
        heap, live, sandboxes = lua_heaps()
        variant.memory.update(lua_heap=heap / count, lua_live=live / count,
                              sandboxes=float(sandboxes - sandboxes_before))
    return ids


# ---------------------------------------------------------------------------- the run


@dataclass
class Settings:
    runs: int
    concurrency: int
    rounds: int
    histories: int
    replays: int
    cached: int
    #: "memory": only the cached runs' memory (no completions/s, no replays)
    only: str | None = None


async def bench(settings: Settings) -> int:
    from temporalio.client import Client
    from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, Worker

    from runner.dev.server import DevServer, free_port
    from runner.revision_source import ProjectRevisionSource
    from runner.sandbox.runtime import LuaSandbox
    from runner.temporal.memo import REVISION_MEMO
    from runner.temporal.worker import serve
    from runner.temporal.workflow import make_workflow_class

    _activity_module()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="flowctl-runner-bench-") as tmp, \
            DevServer(port=free_port()) as server:
        client: Client = await server.connect()
        entries = Path(tmp)
        activities = "".join(ACTIVITY_YAML.format(name=n, module=ACTIVITY_MODULE)
                             for n in ("step_a", "step_b", "step_c"))
        (entries / "app.yaml").write_text(APP_YAML.format(
            address=server.address, task_queue="bench-lua", cache=settings.cached + 100, activities=activities))
        (entries / "order.lua").write_text(ORDER_LUA)
        source = ProjectRevisionSource.from_paths([entries])
        digest = source.workflow("bench:order").digest

        async def start_lua(workflow_id: str, order: dict[str, Any]) -> Any:
            # what runner.client.start.start_workflow sends (pinned revision), minus its search-attribute lookup
            return await client.start_workflow("bench:order", order, id=workflow_id, task_queue="bench-lua",
                                               memo={REVISION_MEMO: digest})

        async def start_native(workflow_id: str, order: dict[str, Any]) -> Any:
            return await client.start_workflow(NativeOrder.run, order, id=workflow_id, task_queue="bench-native")

        lua_replayer = Replayer(workflows=[make_workflow_class(source)], workflow_runner=UnsandboxedWorkflowRunner())
        native_replayer = Replayer(workflows=[NativeOrder])

        async def replay_with(replayer: Replayer, histories: list[Any]) -> None:
            async def each() -> AsyncIterator[Any]:
                for history in histories:
                    yield history
            results = await replayer.replay_workflows(each(), raise_on_replay_failure=False)
            if results.replay_failures:
                raise SystemExit(f"replay failed: {next(iter(results.replay_failures.values()))}")

        lua = Variant("lua", start_lua, lambda h: replay_with(lua_replayer, h))
        native = Variant("native", start_native, lambda h: replay_with(native_replayer, h))

        def lua_heaps() -> tuple[int, int, int]:
            sandboxes = [o for o in gc.get_objects() if isinstance(o, LuaSandbox)]
            heap = sum(s.memory_used() for s in sandboxes)
            for s in sandboxes:
                s.lua.execute("collectgarbage()")  # the real one, in the runtime's own globals
            live = sum(s.memory_used() for s in sandboxes)
            return heap, live, len(sandboxes)

        stop, ready = asyncio.Event(), asyncio.Event()
        lua_worker = asyncio.create_task(serve(source, stop=stop, clients={"bench:client": client}, ready=ready,
                                               drain_timeout=timedelta(seconds=1)))
        await ready.wait()
        native_worker = Worker(client, task_queue="bench-native", workflows=[NativeOrder],
                               activities=[step_a, step_b, step_c], max_cached_workflows=settings.cached + 100,
                               graceful_shutdown_timeout=timedelta(seconds=1))
        held: list[str] = []
        async with native_worker:
            print(f"warming up (dev server {server.address}, pid {server.pid}) ...", flush=True)
            warm = Variant("warm", start_lua, lua.replay), Variant("warm", start_native, native.replay)
            for w in warm:
                await completions(w, 2 * settings.concurrency, settings.concurrency, None, 0)
            # First, right after the warm-up: RSS growth hides memory an earlier phase freed and the held
            # runs reuse, and the completions and replays would leave each variant's own garbage to reuse.
            print(f"holding {settings.cached} cached runs per variant ...", flush=True)
            held += await cached_memory(lua, client, settings.cached, settings.concurrency, lua_heaps)
            held += await cached_memory(native, client, settings.cached, settings.concurrency, None)
            print("terminating the held runs ...", flush=True)

            async def terminate(i: int) -> None:
                await client.get_workflow_handle(held[i]).terminate("benchmark done")

            await _bounded(len(held), settings.concurrency, terminate)
            await asyncio.sleep(2)  # their evictions settle before anything is timed
            per_round = settings.runs // settings.rounds
            for r in range(settings.rounds if settings.only is None else 0):
                for variant in (lua, native) if r % 2 == 0 else (native, lua):
                    print(f"round {r + 1}/{settings.rounds}: {per_round} {variant.name} runs ...", flush=True)
                    await completions(variant, per_round, settings.concurrency, server.pid, settings.histories)
            if settings.only is None:
                print(f"replaying {settings.histories} histories x {settings.replays} per variant ...", flush=True)
            for r in range(2 if settings.only is None else 0):
                for variant in (lua, native) if r % 2 == 0 else (native, lua):
                    await replays(variant, settings.replays // 2)
        stop.set()
        await lua_worker
    (report if settings.only is None else report_memory)(settings, lua, native, load_before)
    return 0


def report_memory(settings: Settings, lua: Variant, native: Variant, load_before: tuple[float, ...]) -> None:
    """The memory section alone (``--only memory``)."""
    kib = 1024.0
    print(f"\nflowctl runner benchmark, memory only: {settings.cached} cached runs per variant")
    print(f"machine: {os.cpu_count()} CPUs; load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}")
    print(f"{'per cached run, KiB':44} {'Lua (flowctl)':>14} {'native Python':>14} {'Lua/native':>11}")
    for label, key in (("RSS, all the runs", "rss"), ("RSS, the second half (marginal)", "rss_marginal"),
                       ("C malloc in use", "malloc"), ("Python (tracemalloc)", "python")):
        ratio = lua.memory[key] / native.memory[key] if native.memory[key] else float("nan")
        print(f"{label:44} {lua.memory[key] / kib:14.1f} {native.memory[key] / kib:14.1f} {ratio:11.2f}")
    print(f"Lua heap held {lua.memory.get('lua_heap', 0.0) / kib:.1f} KiB, live after a full Lua GC "
          f"{lua.memory.get('lua_live', 0.0) / kib:.1f} KiB; sandboxes alive {lua.memory.get('sandboxes', 0):.0f}")
    print(f"command: python bench/runner_bench.py {' '.join(sys.argv[1:])}".rstrip())


def report(settings: Settings, lua: Variant, native: Variant, load_before: tuple[float, ...]) -> None:
    kib = 1024.0
    rows: list[tuple[str, float, float, str]] = [
        ("completions/s", lua.per_second, native.per_second, ">= 1.0"),
        ("start-to-completion p50 ms", 1e3 * lua.latency(50), 1e3 * native.latency(50), ""),
        ("start-to-completion p99 ms", 1e3 * lua.latency(99), 1e3 * native.latency(99), ""),
        ("worker-process CPU ms / run", 1e3 * lua.worker_cpu / lua.completed,
         1e3 * native.worker_cpu / native.completed, ""),
        ("dev-server CPU ms / run", 1e3 * lua.server_cpu / lua.completed,
         1e3 * native.server_cpu / native.completed, ""),
        ("replay CPU ms / history", 1e3 * lua.replay_cpu / lua.replayed, 1e3 * native.replay_cpu / native.replayed,
         "<= 1.0"),
        ("cached run: RSS KiB / run", lua.memory["rss"] / kib, native.memory["rss"] / kib, ""),
        ("cached run: RSS KiB / run, second half", lua.memory["rss_marginal"] / kib,
         native.memory["rss_marginal"] / kib, "<= 1.0"),
        ("cached run: C malloc in use KiB / run", lua.memory["malloc"] / kib, native.memory["malloc"] / kib, ""),
        ("cached run: Python KiB / run (tracemalloc)", lua.memory["python"] / kib, native.memory["python"] / kib, ""),
    ]
    print()
    print(f"flowctl runner benchmark: {settings.runs} runs per variant (3 activities + {TIMER} timer), "
          f"concurrency {settings.concurrency}, {settings.rounds} alternating rounds; "
          f"{len(lua.histories)} histories x {settings.replays} replays; {settings.cached} cached runs")
    print(f"machine: {os.cpu_count()} CPUs; load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}")
    print()
    print(f"{'':44} {'Lua (flowctl)':>14} {'native Python':>14} {'Lua/native':>11} {'target':>8}")
    for label, lua_value, native_value, target in rows:
        ratio = lua_value / native_value if native_value else float("nan")
        print(f"{label:44} {lua_value:14.2f} {native_value:14.2f} {ratio:11.2f} {target:>8}")
    heap, live = lua.memory.get("lua_heap", 0.0) / kib, lua.memory.get("lua_live", 0.0) / kib
    total = lua.memory["rss"] / kib
    print()
    print(f"Lua cached run, {total:.1f} KiB RSS per run (target <= 64 KiB: {'ok' if total <= 64 else 'MISSED'}):")
    print(f"  Lua heap (LuaSandbox.memory_used) {heap:8.1f} KiB   live after a full Lua GC {live:8.1f} KiB")
    print(f"  Python objects (tracemalloc)      {lua.memory['python'] / kib:8.1f} KiB   "
          f"(native run: {native.memory['python'] / kib:.1f} KiB)")
    rest = total - heap - lua.memory["python"] / kib
    print(f"  the rest: lua_State bases, allocator slack, Temporal core  {rest:8.1f} KiB")
    print(f"  sandboxes alive: {lua.memory.get('sandboxes', 0):.0f} for {settings.cached} runs")
    print(f"  compared with a cached native run: {total - native.memory['rss'] / kib:+.1f} KiB RSS per run")
    ratio_tp = lua.per_second / native.per_second
    ratio_replay = (lua.replay_cpu / lua.replayed) / (native.replay_cpu / native.replayed)
    print()
    ratio_rss = lua.memory["rss_marginal"] / native.memory["rss_marginal"]
    print(f"ratios: completions/s {ratio_tp:.2f} (target >= 1.0: {'ok' if ratio_tp >= 1 else 'MISSED'}); "
          f"replay CPU {ratio_replay:.2f} (target <= 1.0: {'ok' if ratio_replay <= 1 else 'MISSED'}); "
          f"cached-run RSS (second half) {ratio_rss:.2f} (target <= 1.0: {'ok' if ratio_rss <= 1 else 'MISSED'}); "
          f"memory {total:.1f} KiB/run (target <= 64)")
    print(f"command: python bench/runner_bench.py {' '.join(sys.argv[1:])}".rstrip())
    print("(one run: on a shared machine compare a few runs; the ratios move less than the raw figures)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run (~1 minute)")
    parser.add_argument("--runs", type=int, help="workflows per variant for completions/s (default 200)")
    parser.add_argument("--concurrency", type=int, default=20, help="runs in flight at once (default 20)")
    parser.add_argument("--replays", type=int, help="times each kept history is replayed (default 20)")
    parser.add_argument("--cached", type=int, help="runs held open per variant for memory (default 500)")
    parser.add_argument("--only", choices=["memory"], help="only this section (memory: the cached runs)")
    args = parser.parse_args(argv)
    settings = Settings(runs=100 if args.quick else 200, concurrency=args.concurrency, rounds=2,
                        histories=10 if args.quick else 20, replays=10 if args.quick else 20,
                        cached=200 if args.quick else 500, only=args.only)
    if args.runs:
        settings.runs = args.runs
    if args.replays:
        settings.replays = args.replays
    if args.cached:
        settings.cached = args.cached
    return asyncio.run(bench(settings))


if __name__ == "__main__":
    raise SystemExit(main())

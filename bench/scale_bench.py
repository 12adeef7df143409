"""Benchmark: how the Lua runner's cost grows with the work, on one real dev server (issue 17).

One run prints four tables (run it by hand; it is never a timed test):

- replay CPU per event for histories of 100, 1,000 and 10,000 events of two workflows: a
  signal-driven actor (no continue-as-new: one message per signal) and an activity loop (one
  Lua activity per iteration). Each history is replayed with ``temporalio.worker.Replayer``
  (make_workflow_class + UnsandboxedWorkflowRunner, as bench/runner_bench.py does); target:
  the per-event cost of the largest history within 1.2x of the smallest's;
- ``flowctl replay --histories DIR`` of 1,000 histories (copies of runner_bench's order workflow
  runs) as a subprocess, ``--jobs 1`` against ``--jobs 2``: histories/s and the ratio (target
  >= 1.8 on 2 cores);
- the worker's RSS with 100, 1,000 and 5,000 cached runs of runner_bench's order workflow
  (held on a long timer, measured by runner_bench.cached_memory): the per-run slope of a
  least-squares line and how far the points are from it;
- a 1 MiB input and result through a Lua workflow and a Lua activity, against the native
  Python twin (a @workflow.defn and an @activity.defn): milliseconds per round trip.

    python bench/scale_bench.py                 # several minutes on 2 cores (the lead's quiet machine)
    python bench/scale_bench.py --quick         # smaller sizes (~1 minute)
    python bench/scale_bench.py --plot scale.png  # also a chart (matplotlib: pip install -e '.[bench]')
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from runner_bench import (
    ACTIVITY_MODULE,
    ACTIVITY_YAML,
    APP_YAML,
    ORDER_LUA,
    Variant,
    _activity_module,
    _bounded,
    cached_memory,  # bench/ is on sys.path when this file runs
)
from temporalio import activity, workflow

# ---------------------------------------------------------------------------- the workloads

SCALE_YAML = """\
  - name: actor
    kind: workflow.lua
    source: file://actor.lua
    modules: [process]
    meta: {temporal: {workflow: {worker: bench:worker}}}
  - name: loop
    kind: workflow.lua
    source: file://loop.lua
    modules: [funcs]
    meta: {temporal: {workflow: {worker: bench:worker}}}
  - name: big
    kind: workflow.lua
    source: file://big.lua
    modules: [funcs]
    meta: {temporal: {workflow: {worker: bench:worker}}}
  - name: echo
    kind: function.lua
    source: file://echo.lua
    options: {start_to_close_timeout: 1m}
    meta: {temporal: {activity: {worker: bench:worker}}}
"""

ACTOR_LUA = """\
-- A long-lived actor without continue-as-new: one message per signal until `stop`.
local process = require("process")

local function main(state)
    local inbox = process.inbox()
    local count, total = 0, 0
    while true do
        local msg = inbox:receive()
        if msg:topic() == "stop" then return {count = count, total = total, id = state.id} end
        local data = msg:payload():data() or {}
        count = count + 1
        total = total + (data.points or 0)
    end
end

return { main = main }
"""

LOOP_LUA = """\
-- An activity loop: `count` calls of the Lua echo activity, one after another.
local funcs = require("funcs")

local function main(input)
    local sum = 0
    for i = 1, input.count do
        local value, err = funcs.call("bench:echo", {i = i})
        if err then return nil, err end
        sum = sum + value.i
    end
    return {count = input.count, sum = sum}
end

return { main = main }
"""

BIG_LUA = """\
-- A large payload through a Lua workflow and a Lua activity, and back as the result.
local funcs = require("funcs")

local function main(input)
    local echoed, err = funcs.call("bench:echo", input)
    if err then return nil, err end
    return echoed
end

return { main = main }
"""

ECHO_LUA = """\
-- Returns its input.
return { main = function(value) return value end }
"""


@activity.defn(name="bench-native-echo")
async def native_echo(value: Any) -> Any:
    """The native twin of echo.lua."""
    return value


@workflow.defn(name="bench-native-big")
class NativeBig:
    """The native twin of big.lua."""

    @workflow.run
    async def run(self, value: Any) -> Any:
        return await workflow.execute_activity("bench-native-echo", value,
                                               start_to_close_timeout=timedelta(minutes=1))


def payload(size: int) -> dict[str, Any]:
    """About ``size`` bytes of JSON: a list of small records (what a batch of orders looks like)."""
    record = {"id": "o-000000", "sku": "SKU-12345", "qty": 3, "price": 12.5, "note": "x" * 40}
    count = max(1, size // (len(json.dumps(record)) + 2))
    return {"items": [{**record, "id": f"o-{i:06d}"} for i in range(count)]}


# ---------------------------------------------------------------------------- the figures


@dataclass
class Growth:
    """Replay CPU of one workflow's histories, by size."""

    workload: str
    events: list[int] = field(default_factory=list)
    cpu_per_event_us: list[float] = field(default_factory=list)

    @property
    def flatness(self) -> float:
        """Per-event cost of the largest history / that of the smallest."""
        return self.cpu_per_event_us[-1] / self.cpu_per_event_us[0] if self.cpu_per_event_us else float("nan")

    @property
    def marginal(self) -> list[float]:
        """CPU µs per event added from one size to the next."""
        total = [us * n for us, n in zip(self.cpu_per_event_us, self.events, strict=True)]
        return [(total[i + 1] - total[i]) / (self.events[i + 1] - self.events[i]) for i in range(len(total) - 1)]


@dataclass
class Results:
    growth: list[Growth] = field(default_factory=list)
    #: jobs -> (histories, wall seconds)
    replay_cli: dict[int, tuple[int, float]] = field(default_factory=dict)
    #: (cached runs, RSS bytes above the baseline)
    cached: list[tuple[int, float]] = field(default_factory=list)
    #: (cached runs, C malloc bytes in use above the baseline)
    cached_malloc: list[tuple[int, float]] = field(default_factory=list)
    #: variant -> seconds per round trip
    round_trips: dict[str, list[float]] = field(default_factory=dict)
    payload_bytes: int = 0


async def record_actor(client: Any, events: int) -> Any:
    """An actor run signalled until its history has about ``events`` events, then stopped."""
    handle = await client.start_workflow("bench:actor", {"id": "a"}, id=f"scale-actor-{uuid.uuid4().hex[:10]}",
                                         task_queue="bench-lua")
    while True:
        described = await handle.describe()
        length = described.raw_description.workflow_execution_info.history_length
        if length >= events - 6:
            break
        # signals sent together may share a workflow task (1 event each instead of 4): small batches
        batch = max(1, min(25, (events - length) // 8))
        await asyncio.gather(*(handle.signal("add_points", {"points": i}) for i in range(batch)))
    await handle.signal("stop", None)
    await handle.result()
    return await handle.fetch_history()


async def record_loop(client: Any, events: int) -> Any:
    """An activity loop with about ``events`` events (6 per activity)."""
    handle = await client.start_workflow("bench:loop", {"count": max(1, (events - 5) // 6)},
                                         id=f"scale-loop-{uuid.uuid4().hex[:10]}", task_queue="bench-lua")
    await handle.result()
    return await handle.fetch_history()


async def replay_cpu(replayer: Any, history: Any, budget_events: int) -> float:
    """Process CPU seconds per event, replaying ``history`` enough times for ``budget_events`` events."""
    times = max(2, budget_events // len(history.events))
    await replayer.replay_workflow(history)  # warm: the revision's chunk, the replayer's first worker
    cpu = time.process_time()
    for _ in range(times):
        await replayer.replay_workflow(history)
    return (time.process_time() - cpu) / (times * len(history.events))


def replay_command(tree: Path, histories: Path, jobs: int) -> float:
    """Wall seconds of ``flowctl replay --histories DIR --entries TREE --jobs N`` (a fresh process)."""
    command = [sys.executable, "-c", "import cli; cli.run()", "replay", "--histories", str(histories),
               "--entries", str(tree), "--jobs", str(jobs), "--json"]
    wall = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    seconds = time.perf_counter() - wall
    if done.returncode != 0:
        raise SystemExit(f"flowctl replay --jobs {jobs} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    report = json.loads(done.stdout)
    if not report["ok"]:
        raise SystemExit(f"flowctl replay --jobs {jobs}: not every history replayed OK")
    return seconds


@dataclass
class Settings:
    sizes: list[int]
    replay_budget: int
    cli_histories: int
    distinct: int
    cached: list[int]
    round_trips: int
    payload: int
    concurrency: int = 20


async def bench(settings: Settings, results: Results) -> None:
    from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
    from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, Worker

    from runner.dev.server import DevServer, free_port
    from runner.revision_source import ProjectRevisionSource
    from runner.temporal.memo import REVISION_MEMO
    from runner.temporal.worker import serve
    from runner.temporal.workflow import make_workflow_class

    # the SDK warns at every payload over 512 KiB: the 1 MiB round trips would flood the output
    Runtime.set_default(Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(
        filter=TelemetryFilter(core_level="ERROR", other_level="ERROR")))), error_if_already_set=False)
    _activity_module()
    with tempfile.TemporaryDirectory(prefix="flowctl-scale-bench-") as tmp, DevServer(port=free_port()) as server:
        client = await server.connect()
        tree = Path(tmp) / "entries"
        tree.mkdir()
        activities = "".join(ACTIVITY_YAML.format(name=n, module=ACTIVITY_MODULE)
                             for n in ("step_a", "step_b", "step_c"))
        (tree / "app.yaml").write_text(APP_YAML.format(address=server.address, task_queue="bench-lua",
                                                       cache=max(settings.cached) + 100,
                                                       activities=activities + SCALE_YAML))
        for name, text in (("order.lua", ORDER_LUA), ("actor.lua", ACTOR_LUA), ("loop.lua", LOOP_LUA),
                           ("big.lua", BIG_LUA), ("echo.lua", ECHO_LUA)):
            (tree / name).write_text(text)
        source = ProjectRevisionSource.from_paths([tree])
        order_digest = source.workflow("bench:order").digest
        stop, ready = asyncio.Event(), asyncio.Event()
        lua_worker = asyncio.create_task(serve(source, stop=stop, clients={"bench:client": client}, ready=ready,
                                               drain_timeout=timedelta(seconds=1)))
        await ready.wait()
        native_worker = Worker(client, task_queue="bench-native", workflows=[NativeBig], activities=[native_echo],
                               max_concurrent_activities=4, graceful_shutdown_timeout=timedelta(seconds=1))
        async with native_worker:
            order = {"id": "o-1", "total": 1}

            async def start_order(workflow_id: str, value: dict[str, Any]) -> Any:
                return await client.start_workflow("bench:order", value, id=workflow_id, task_queue="bench-lua",
                                                   memo={REVISION_MEMO: order_digest})

            async def order_run(i: int) -> Any:
                handle = await start_order(f"scale-order-{uuid.uuid4().hex[:10]}", {**order, "id": f"o-{i}"})
                await handle.result()
                return await handle.fetch_history()

            async def warm(i: int) -> None:
                await order_run(i)

            # warm up: the revision's chunk, the activities' module, the allocator's first arenas
            await _bounded(2 * settings.concurrency, settings.concurrency, warm)
            # memory first: RSS does not show growth into memory that an earlier phase freed
            print(f"holding {', '.join(map(str, settings.cached))} cached runs ...", flush=True)
            held: list[str] = []
            rss = malloc = 0.0
            for count in settings.cached:  # each step adds runs; cached_memory gives its growth per run
                variant = Variant("lua", start_order, lambda h: asyncio.sleep(0))
                added = count - len(held)
                held += await cached_memory(variant, client, added, settings.concurrency, None)
                rss += variant.memory["rss"] * added
                malloc += variant.memory["malloc"] * added
                results.cached.append((count, rss))
                results.cached_malloc.append((count, malloc))

            async def terminate(i: int) -> None:
                await client.get_workflow_handle(held[i]).terminate("benchmark done")

            await _bounded(len(held), settings.concurrency, terminate)

            replayer = Replayer(workflows=[make_workflow_class(source)], workflow_runner=UnsandboxedWorkflowRunner())
            for workload, record in (("actor (signals)", record_actor), ("activity loop", record_loop)):
                growth = Growth(workload)
                for size in settings.sizes:
                    print(f"{workload}: recording a {size}-event history ...", flush=True)
                    history = await record(client, size)
                    growth.events.append(len(history.events))
                    growth.cpu_per_event_us.append(1e6 * await replay_cpu(replayer, history,
                                                                          settings.replay_budget))
                results.growth.append(growth)

            print(f"flowctl replay of {settings.cli_histories} histories, --jobs 1 and 2 ...", flush=True)
            distinct = [await order_run(i) for i in range(settings.distinct)]
            histories = Path(tmp) / "histories"
            histories.mkdir()
            for i in range(settings.cli_histories):
                (histories / f"h{i:05d}.json").write_text(distinct[i % len(distinct)].to_json())
            for jobs in (1, 2):
                results.replay_cli[jobs] = (settings.cli_histories, replay_command(tree, histories, jobs))

            print(f"{settings.round_trips} round trips of a {settings.payload // 1024} KiB payload per variant ...",
                  flush=True)
            value = payload(settings.payload)
            results.payload_bytes = len(json.dumps(value))
            for name, start in (("lua", lambda wid: client.start_workflow("bench:big", value, id=wid,
                                                                           task_queue="bench-lua")),
                                ("native", lambda wid: client.start_workflow(NativeBig.run, value, id=wid,
                                                                              task_queue="bench-native"))):
                await (await start(f"scale-big-warm-{name}-{uuid.uuid4().hex[:8]}")).result()
                for _ in range(settings.round_trips):
                    wall = time.perf_counter()
                    result = await (await start(f"scale-big-{name}-{uuid.uuid4().hex[:8]}")).result()
                    results.round_trips.setdefault(name, []).append(time.perf_counter() - wall)
                    if result != value:
                        raise SystemExit(f"the {name} round trip changed the payload")
        stop.set()
        await lua_worker


def slope(points: Sequence[tuple[int, float]]) -> tuple[float, float]:
    """Least-squares slope (bytes per run) and the largest distance of a point from the line, relative."""
    if len(points) < 2:
        return float("nan"), float("nan")
    xs, ys = [float(x) for x, _ in points], [y for _, y in points]
    fit = statistics.linear_regression(xs, ys)
    worst = max(abs(y - (fit.slope * x + fit.intercept)) / abs(y) for x, y in zip(xs, ys, strict=True) if y)
    return fit.slope, worst


def report(settings: Settings, results: Results, load_before: tuple[float, ...], wall: float) -> None:
    print()
    print(f"flowctl scale benchmark ({wall:.0f} s); machine: {os.cpu_count()} CPUs; load average before "
          f"{load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}")
    print()
    print("1. replay CPU per event (Replayer, in process; the largest history against the smallest: target <= 1.2)")
    print(f"{'workload':18} {'events':>8} {'µs / event':>11} {'ms / history':>13}")
    for growth in results.growth:
        for events, us in zip(growth.events, growth.cpu_per_event_us, strict=True):
            print(f"{growth.workload:18} {events:8d} {us:11.1f} {us * events / 1e3:13.1f}")
        verdict = "ok" if growth.flatness <= 1.2 else "MISSED"
        print(f"{'':18} {'largest / smallest':>20} {growth.flatness:8.2f}  ({verdict})")
        print(f"{'':18} {'marginal µs / event':>20} {'  '.join(f'{m:.1f}' for m in growth.marginal)}  "
              "(between sizes: no per-history fixed cost; growing = work per event grows with the history)")
    print()
    print("2. flowctl replay --histories DIR (a fresh process, wall time; target: --jobs 2 >= 1.8x --jobs 1)")
    for jobs, (count, seconds) in sorted(results.replay_cli.items()):
        print(f"   --jobs {jobs}: {count} histories in {seconds:6.2f} s = {count / seconds:7.1f} histories/s")
    if len(results.replay_cli) == 2:
        ratio = results.replay_cli[1][1] / results.replay_cli[2][1]
        print(f"   speed-up --jobs 2 / --jobs 1: {ratio:.2f} ({'ok' if ratio >= 1.8 else 'MISSED'})")
    print()
    print("3. worker memory with cached runs (runner_bench's order workflow held on a timer), above the baseline")
    for (count, rss), (_, malloc) in zip(results.cached, results.cached_malloc, strict=True):
        print(f"   {count:6d} cached runs: RSS {rss / 2**20:+8.1f} MiB ({rss / count / 1024:6.1f} KiB / run)   "
              f"C malloc {malloc / 2**20:+8.1f} MiB ({malloc / count / 1024:6.1f} KiB / run)")
    for label, points in (("RSS", results.cached), ("C malloc", results.cached_malloc)):
        per_run, worst = slope(points)
        print(f"   {label} slope: {per_run / 1024:.1f} KiB per cached run; farthest point from the line: "
              f"{100 * worst:.1f}%")
    print()
    print(f"4. a {results.payload_bytes / 2**20:.2f} MiB input and result (workflow -> activity -> back), "
          f"ms per round trip")
    for name, trips in results.round_trips.items():
        print(f"   {name:7} median {1e3 * statistics.median(trips):8.1f}   min {1e3 * min(trips):8.1f}   "
              f"({len(trips)} round trips)")
    if len(results.round_trips) == 2:
        ratio = statistics.median(results.round_trips["lua"]) / statistics.median(results.round_trips["native"])
        print(f"   Lua / native: {ratio:.2f}")
    print()
    print(f"command: python bench/scale_bench.py {' '.join(sys.argv[1:])}".rstrip())


def plot(results: Results, path: Path) -> None:
    """Four panels, one per table; needs matplotlib (``pip install -e '.[bench]'``)."""
    try:
        import matplotlib
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install -e '.[bench]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ((events, replay), (cached, trips)) = plt.subplots(2, 2, figsize=(11, 8))
    for growth in results.growth:
        events.plot(growth.events, growth.cpu_per_event_us, marker="o", label=growth.workload)
    events.set(xscale="log", xlabel="events in the history", ylabel="replay CPU µs / event",
               title="Replay cost per event")
    events.set_ylim(bottom=0)
    events.legend()
    jobs = sorted(results.replay_cli)
    replay.bar([f"--jobs {j}" for j in jobs], [results.replay_cli[j][0] / results.replay_cli[j][1] for j in jobs])
    replay.set(ylabel="histories / s", title="flowctl replay --histories DIR")
    for label, points in (("RSS", results.cached), ("C malloc", results.cached_malloc)):
        per_run, _ = slope(points)
        cached.plot([c for c, _ in points], [b / 2**20 for _, b in points], marker="o",
                    label=f"{label} ({per_run / 1024:.0f} KiB / run)")
    cached.set(xlabel="cached runs", ylabel="MiB above the baseline", title="Worker memory with cached runs")
    cached.legend()
    names = list(results.round_trips)
    trips.bar(names, [1e3 * statistics.median(results.round_trips[n]) for n in names])
    trips.set(ylabel="ms per round trip (median)", title=f"{results.payload_bytes / 2**20:.1f} MiB through "
              "a workflow and an activity")
    figure.tight_layout()
    figure.savefig(path)
    print(f"chart: {path}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (~1 minute)")
    parser.add_argument("--sizes", type=lambda t: [int(s) for s in t.split(",")],
                        help="history sizes in events, comma-separated (default 100,1000,10000)")
    parser.add_argument("--histories", type=int, help="histories for flowctl replay (default 1000)")
    parser.add_argument("--cached", type=lambda t: [int(s) for s in t.split(",")],
                        help="cached-run counts, comma-separated (default 100,1000,5000)")
    parser.add_argument("--plot", type=Path, metavar="FILE.png", help="also draw a chart (needs matplotlib)")
    args = parser.parse_args(argv)
    quick = args.quick
    settings = Settings(sizes=args.sizes or ([100, 1000] if quick else [100, 1000, 10000]),
                        replay_budget=20_000 if quick else 100_000,
                        cli_histories=args.histories or (100 if quick else 1000), distinct=5 if quick else 20,
                        cached=args.cached or ([50, 100, 200] if quick else [100, 1000, 5000]),
                        round_trips=3 if quick else 20, payload=1 << 20)
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            parser.error("--plot needs matplotlib: pip install -e '.[bench]'")
    results = Results()
    load_before, wall = os.getloadavg(), time.perf_counter()
    asyncio.run(bench(settings, results))
    report(settings, results, load_before, time.perf_counter() - wall)
    if args.plot:
        plot(results, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

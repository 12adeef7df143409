"""Benchmark: the replay gate of ``flowctl apply`` against 100 open runs of ~50 history events each.

Run by hand (not a test):  python bench/gate_bench.py [--runs N] [--activities K] [--repeat R]

Starts a headless dev server, applies a project whose workflow (on an ``auto_upgrade``
worker) calls K activities (default 8: ~52 history events) and then waits for a signal,
serves it with the real worker in this process until N runs (default 100) all wait, stops
the worker, and changes the workflow compatibly (the code after the wait). Then it times:

- ``flowctl apply --dry-run --json`` in a subprocess: what a user waits for (interpreter
  start-up, validation, plan, the gate), with the gate's own ``seconds`` from its JSON;
- the gate alone in-process (``runner.rollout.gate.check_runs``), R times (default 3);
- its parts: listing the runs, fetching their histories, replaying them.

Target: the gate under 5 s for 100 runs on 2 cores.
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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

WORKFLOW_LUA = """\
-- K activities (6 history events each), then wait for "finish": an open run with a long history.
local function main(input)
    local total = 0
    for step = 1, input.steps do
        total = total + funcs.call("bench:add", {value = step})
    end
    process.listen("finish"):receive()
    return {total = total, code = "CODE"}
end

return { main = main }
"""

ACTIVITY_LUA = """\
local function main(input)
    return input.value
end

return { main = main }
"""

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
    task_queue: bench-gate
    versioning: auto_upgrade
  - name: loop
    kind: workflow.lua
    source: file://loop.lua
    modules: [funcs, process]
    meta: {{temporal: {{workflow: {{worker: bench:worker}}}}}}
  - name: add
    kind: function.lua
    source: file://add.lua
    meta: {{temporal: {{activity: {{worker: bench:worker}}}}}}
"""


async def _open_runs(client: Any, source: Any, runs: int, steps: int) -> int:
    """Start ``runs`` runs and wait until every one recorded its activities; their mean history length."""
    from runner.client.start import start_workflow

    handles = []
    for index in range(runs):
        started = await start_workflow(client, source, "bench:loop", {"steps": steps}, workflow_id=f"gate-{index}")
        handles.append(started.handle)
    lengths: list[int] = []
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        lengths = [len((await handle.fetch_history()).events) for handle in handles]
        if min(lengths) >= 4 + 6 * steps:
            return round(statistics.mean(lengths))
        await asyncio.sleep(0.5)
    raise SystemExit(f"the runs did not reach their wait in 10 minutes (history lengths {sorted(lengths)[:5]}…)")


async def bench(runs: int, steps: int, repeat: int) -> int:
    from registry.gate import GateRequest, GateVerdict, run_gate
    from registry.open_store import open_store
    from registry.publish import plan_tree, publish_tree
    from runner.dev.server import DevServer, free_port
    from runner.replay import LoadedHistory, replay_histories
    from runner.revision_source import StoreRevisionSource
    from runner.rollout.gate import _after_source, check_runs
    from runner.temporal.worker import serve

    with tempfile.TemporaryDirectory(prefix="flowctl-gate-bench-") as tmp, \
            DevServer(port=free_port()) as server:
        root = Path(tmp)
        entries = root / "entries"
        entries.mkdir()
        (entries / "app.yaml").write_text(APP_YAML.format(address=server.address))
        (entries / "loop.lua").write_text(WORKFLOW_LUA.replace("CODE", "A"))
        (entries / "add.lua").write_text(ACTIVITY_LUA)
        registry = str(root / "registry.db")
        assert publish_tree([entries], registry).ok
        client = await server.connect()

        with open_store(registry, create=False) as store:
            source = StoreRevisionSource(store)
            stop, ready = asyncio.Event(), asyncio.Event()
            worker = asyncio.create_task(serve(source, stop=stop, clients={"bench:client": client}, ready=ready))
            await ready.wait()
            setup = time.perf_counter()
            events = await _open_runs(client, source, runs, steps)
            print(f"setup: {runs} open runs of ~{events} history events each in {time.perf_counter() - setup:.1f} s")
            stop.set()
            await worker

        (entries / "loop.lua").write_text(WORKFLOW_LUA.replace("CODE", "B"))  # compatible: after the wait
        env = {**os.environ, "FLOWCTL_REGISTRY": registry}
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "cli", "apply", "--dry-run", "--json", "--entries", str(entries)],
                              capture_output=True, text=True, env=env, cwd=root, timeout=600)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            print(done.stdout, done.stderr, sep="\n")
            return 1
        gate = json.loads(done.stdout)["gate"]
        print(f"flowctl apply --dry-run: {wall:.2f} s wall; its gate: {gate['runs']} runs in {gate['seconds']:.2f} s "
              f"({gate['runs'] / gate['seconds']:.0f} runs/s), ok={gate['ok']}")

        with open_store(registry, create=False) as store:
            diff = plan_tree([entries], store)
            assert diff.plan is not None
            requests: list[Any] = []

            def keep(request: GateRequest) -> GateVerdict:
                requests.append(request)  # the request is all this needs
                return GateVerdict()

            run_gate(diff.plan, store, keep)
        [request] = requests
        timings = []
        for _ in range(repeat):
            verdict = await check_runs(request, clients={"bench:client": client})
            assert verdict.ok, verdict.divergences[:1]
            timings.append(verdict.seconds)
        print(f"gate in-process: {verdict.runs} runs, best {min(timings):.2f} s, median "
              f"{statistics.median(timings):.2f} s ({verdict.runs / min(timings):.0f} runs/s)")

        listed = time.perf_counter()
        executions = [e async for e in client.list_workflows("WorkflowType = 'bench:loop' AND "
                                                             "ExecutionStatus = 'Running'", limit=runs)]
        fetched = time.perf_counter()
        histories = await asyncio.gather(*(client.get_workflow_handle(e.id, run_id=e.run_id).fetch_history()
                                           for e in executions))
        replayed = time.perf_counter()
        results = await replay_histories(_after_source(request), [LoadedHistory(h.workflow_id, h) for h in histories])
        end = time.perf_counter()
        assert all(result.ok for result in results)
        print(f"parts: list {fetched - listed:.2f} s, fetch {replayed - fetched:.2f} s, replay {end - replayed:.2f} s "
              f"({(end - replayed) / len(histories) * 1000:.1f} ms per history)")
        for handle in executions:
            await client.get_workflow_handle(handle.id, run_id=handle.run_id).terminate("benchmark over")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100, help="open runs to replay (default 100)")
    parser.add_argument("--activities", type=int, default=8, help="activities per run: 6 events each (default 8)")
    parser.add_argument("--repeat", type=int, default=3, help="in-process gate timings (default 3)")
    args = parser.parse_args(argv)
    return asyncio.run(bench(args.runs, args.activities, args.repeat))


if __name__ == "__main__":
    raise SystemExit(main())

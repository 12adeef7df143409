"""Benchmark: `flowctl validate` on 1,000 generated entries (each with its own Lua source).

Prints the cold and warm (second run: Lua analysis cache hot) wall time of the real
command, and the time check-jsonschema needs for the schema stage alone on the same
files, side by side. Target: warm validate under 0.5 s for 1,000 entries.

With ``--broken N``, N of the entries carry a broken reference (a workflow's funcs.call to
a missing activity, ``--calls`` of them per workflow; an activity whose worker does not
exist), and the valid and the broken tree are timed side by side with their ratio: validation
must stay linear in the number of findings (target: broken < 2x valid).

    pip install -e '.[bench]'
    python bench/validate_bench.py [--entries 1000] [--runs 5]
    python bench/validate_bench.py --entries 10000 --broken 1000 --runs 1
    python bench/validate_bench.py --entries 30000 --broken 29998 --calls 9 --runs 1   # ~90k findings
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PER_FILE = 50

WORKFLOW = """\
-- generated workflow {n}
local funcs = require("funcs")
local time = require("time")

local function charge(order)
    local payment, err = funcs.call("bench:activity_{a}", {{amount = order.total, n = {n}}})
    if err then
        return nil, err
    end
    return payment
end

local function main(order)
    local payment, err = charge(order)
    if err then
        return {{status = "failed", error = tostring(err)}}
    end
    time.sleep(order.wait or "1s")
    local items = {{}}
    for i, item in ipairs(order.items or {{}}) do
        items[#items + 1] = {{sku = item.sku, qty = item.qty * 2, index = i}}
    end
    return {{status = "completed", payment = payment.id, items = items}}
end

return {{ main = main }}
"""

ACTIVITY = """\
-- generated activity {n}
local uuid = require("uuid")
local errors = require("errors")

local function main(input)
    if type(input) ~= "table" or (input.amount or 0) <= 0 then
        return nil, errors.new({{kind = "INVALID", message = "bad input {n}", retryable = false}})
    end
    local total = 0
    for _, v in pairs(input) do
        if type(v) == "number" then total = total + v end
    end
    return {{id = "pay-" .. uuid.v4(), total = total, n = {n}}}
end

return {{ main = main }}
"""


BROKEN_CALL = '    funcs.call("bench:missing_{n}_{k}", {{n = {n}}})\n'


def generate(root: Path, count: int, broken: int = 0, calls: int = 1) -> None:
    """``count`` entries: a client and a worker, then workflows and activities, 50 per file.

    The ``broken`` entries spread evenly among them have a broken reference: a workflow
    ``calls`` funcs.call()s to missing activities (FC407), an activity a missing worker (FC202).
    """
    every = (count - 2) / broken if broken else 0.0
    wrong = {2 + int(i * every) for i in range(broken)}
    (root / "infra.yaml").write_text(
        'version: "1.0"\nnamespace: bench\nentries:\n'
        "  - {name: client, kind: temporal.client, address: '${env:TEMPORAL_ADDRESS:-localhost:7233}'}\n"
        "  - {name: worker, kind: temporal.worker, client: bench:client, task_queue: bench}\n")
    made = 2
    file_no = 0
    while made < count:
        file_no += 1
        lines = ['version: "1.0"', "namespace: bench", "entries:"]
        for _ in range(min(PER_FILE, count - made)):
            n = made
            made += 1
            if n % 4 == 0:
                source = WORKFLOW.format(n=n, a=n + 1)
                if n in wrong:
                    missing = "".join(BROKEN_CALL.format(n=n, k=k) for k in range(calls))
                    source = source.replace("local function main(order)\n",
                                            "local function main(order)\n" + missing)
                (root / f"wf_{n}.lua").write_text(source)
                lines += [f"  - name: workflow_{n}", "    kind: workflow.lua", f"    source: file://wf_{n}.lua",
                          "    modules: [funcs, time]", "    meta: {temporal: {workflow: {worker: worker}}}"]
            else:
                (root / f"act_{n}.lua").write_text(ACTIVITY.format(n=n))
                worker = "no_worker" if n in wrong else "worker"
                lines += [f"  - name: activity_{n}", "    kind: function.lua", f"    source: file://act_{n}.lua",
                          "    modules: [uuid, errors]",
                          "    options: {start_to_close_timeout: 30s, retry_policy: {maximum_attempts: 3}}",
                          f"    meta: {{temporal: {{activity: {{worker: {worker}}}}}}}"]
        (root / f"entries_{file_no:03d}.yaml").write_text("\n".join(lines) + "\n")


def timed(cmd: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, done


def cpu_timed(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run: on a busy machine the CPU time is the steadier."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall, _ = timed(cmd, cwd)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5, help="warm runs to take the median of")
    parser.add_argument("--broken", type=int, default=0,
                        help="entries with a broken reference: time a valid and a broken tree side by side")
    parser.add_argument("--calls", type=int, default=1, help="missing activities each broken workflow calls")
    args = parser.parse_args()
    flowctl = shutil.which("flowctl") or sys.exit("flowctl is not installed (pip install -e .)")
    if args.broken:
        return _broken_vs_valid(flowctl, args.entries, min(args.broken, args.entries - 2), args.calls, args.runs)
    checker = shutil.which("check-jsonschema")
    with tempfile.TemporaryDirectory(prefix="flowctl-bench-") as tmp:
        work = Path(tmp)
        entries = work / "entries"
        entries.mkdir()
        generate(entries, args.entries)
        validate = [flowctl, "validate", "entries", "--cache-dir", str(work / "cache")]
        cold, done = timed(validate, work)
        if done.returncode != 0:
            print(done.stdout[-2000:], done.stderr[-2000:])
            sys.exit("the generated tree does not validate; the benchmark is broken")
        warm = statistics.median(timed(validate, work)[0] for _ in range(args.runs))
        in_process = _in_process(entries, work / "cache", args.runs)
        schema_stage = _schema_stage(entries, args.runs)
        print(f"entries: {args.entries} in {len(list(entries.glob('*.yaml')))} files (+ Lua sources)")
        print(f"flowctl validate, cold (no cache):      {cold:6.3f} s")
        print(f"flowctl validate, warm (median of {args.runs}):  {warm:6.3f} s   target < 0.5 s: "
              f"{'ok' if warm < 0.5 else 'MISSED'}")
        print(f"  of which validate_project in-process: {in_process:6.3f} s")
        print(f"flowctl schema stage alone, uncached (in-process): {schema_stage:6.3f} s")
        if checker is None:
            print("check-jsonschema: not installed (pip install -e '.[bench]')")
            return 0
        schemas = work / "schemas"
        subprocess.run([flowctl, "schema", "export", str(schemas)], check=True, capture_output=True)
        files = sorted(str(p) for p in entries.glob("*.yaml"))
        check = [checker, "--schemafile", str(schemas / "entry-file.schema.json"), *files]
        timed(check, work)  # warm its own caches too
        schema_only = statistics.median(timed(check, work)[0] for _ in range(args.runs))
        print(f"check-jsonschema, schema stage only:    {schema_only:6.3f} s")
        print(f"ratio flowctl (all 5 stages) / check-jsonschema (schema only): {warm / schema_only:.2f}")
    return 0


def _broken_vs_valid(flowctl: str, count: int, broken: int, calls: int, runs: int) -> int:
    """The same tree valid and with ``broken`` broken references, cold and warm, and the ratio."""
    rows = {}
    with tempfile.TemporaryDirectory(prefix="flowctl-bench-") as tmp:
        for label, wrong in (("valid", 0), ("broken", broken)):
            work = Path(tmp) / label
            entries = work / "entries"
            entries.mkdir(parents=True)
            generate(entries, count, wrong, calls)
            validate = [flowctl, "validate", "entries", "--format", "json", "--cache-dir", str(work / "cache")]
            cold, done = timed(validate, work)
            if done.returncode != (1 if wrong else 0):
                print(done.stdout[-2000:], done.stderr[-2000:])
                sys.exit(f"the generated {label} tree gives exit {done.returncode}; the benchmark is broken")
            findings = len(json.loads(done.stdout)["diagnostics"])
            warm_runs = [cpu_timed(validate, work) for _ in range(runs)]
            warm, cpu = (statistics.median(run[i] for run in warm_runs) for i in (0, 1))
            rows[label] = (cold, warm, cpu, findings)
    print(f"entries: {count}, {broken} of them with a broken reference ({calls} missing call(s) per workflow)")
    print(f"{'':8} {'findings':>9} {'cold s':>8} {'warm s':>8} {'warm CPU s':>11}   (warm: median of {runs})")
    for label, (cold, warm, cpu, findings) in rows.items():
        print(f"{label:8} {findings:9d} {cold:8.3f} {warm:8.3f} {cpu:11.3f}")
    ratio, cpu_ratio = rows["broken"][1] / rows["valid"][1], rows["broken"][2] / rows["valid"][2]
    print(f"ratio broken / valid (warm): {ratio:.2f} (CPU {cpu_ratio:.2f})   target < 2: "
          f"{'ok' if ratio < 2 else 'MISSED'}")
    return 0


def _schema_stage(entries: Path, runs: int) -> float:
    """Stage 2 only, without the schema-result cache: what the warm run skips."""
    from registry.loader import load_project
    from registry.schema_check import check_document

    project = load_project([entries])
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        for doc in project.documents:
            check_document(doc)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _in_process(entries: Path, cache: Path, runs: int) -> float:
    """validate_project's own time (no interpreter start-up or imports)."""
    from registry.validate import validate_project

    validate_project([entries], cache_dir=cache)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        validate_project([entries], cache_dir=cache)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


if __name__ == "__main__":
    raise SystemExit(main())

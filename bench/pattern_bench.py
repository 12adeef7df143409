"""Benchmark: string patterns in the sandbox (a counted matcher written in Lua) against Lua's C matcher.

The sandbox runs ``string.find/match/gmatch/gsub`` on a port of Lua 5.4's matcher to Lua
(runner/sandbox/lua/45_patterns.lua), so a backtracking pattern is counted by the instruction
budget instead of hanging a worker in C. This measures what that costs on patterns workflows
use, side by side: the same Lua loop in a plain lupa runtime (C matcher) and in a LuaSandbox
(counted matcher, budget out of the way), in calls per second and in budget instructions per call.

    python bench/pattern_bench.py            # ~20 s
    python bench/pattern_bench.py --quick    # ~5 s

It is never a timed test: run it by hand, compare the ratios (one machine, one process).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass

import lupa.lua54 as lua54

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from runner.sandbox.runtime import LuaSandbox, SandboxLimits

TEXT = ("The quick brown fox jumps over the lazy dog, 42 times; then it rests. " * 15)[:1024]
CSV = ",".join(f"item{i}" for i in range(100))


@dataclass(frozen=True)
class Case:
    """One pattern call, as a Lua expression over the locals ``s`` (subject) and ``t`` (a table)."""

    name: str
    subject: str
    call: str


CASES = [
    Case("trim", "   order 1234   ", "s:match('^%s*(.-)%s*$')"),
    Case("key=value", "currency=EUR", "s:match('(%w+)=(%w+)')"),
    Case("ISO date", "2024-01-02T03:04:05Z", "s:match('^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)')"),
    Case("e-mail check", "jane.doe@example.com", "s:find('^[%w._%-]+@[%w.%-]+%.%a+$')"),
    Case("number check", "-1234.50", "s:find('^-?%d+%.?%d*$')"),
    Case("prefix check", "order:1234", "s:find('^order:')"),
    Case("plain find, 1 KB", TEXT, "s:find('rests', 1, true)"),
    Case("split CSV (gmatch), 100 fields", CSV, "(function() local n = 0 for f in s:gmatch('[^,]+') do n = n + 1 end "
                                                "return n end)()"),
    Case("words (gmatch), 1 KB", TEXT, "(function() local n = 0 for w in s:gmatch('%a+') do n = n + 1 end "
                                       "return n end)()"),
    Case("collapse spaces (gsub), 1 KB", TEXT, "s:gsub('%s+', ' ')"),
    Case("template (gsub, table)", "Dear {name}, your order {id} ships {when}.",
         "s:gsub('{(%w+)}', t)"),
    Case("escape quotes (gsub)", 'say "hi" and "bye"', "s:gsub('[\"\\\\]', '\\\\%0')"),
]

LOOP = """
return function(s, t, n)
    local r
    for i = 1, n do r = {call} end
    return r
end
"""


def per_second(fn: object, subject: str, table: object, n: int) -> float:
    """Calls per second of ``fn(subject, table, n)``, the best of three runs."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        fn(subject, table, n)  # type: ignore[operator]
        best = min(best, time.perf_counter() - started)
    return n / best


def instructions_per_call(case: Case, n: int) -> float:
    """Budget instructions one call uses in the sandbox (hook ticks and C work charged)."""
    budget = 10**12
    box = LuaSandbox(seed=1, limits=SandboxLimits(instructions=budget))
    loop = box.entrypoint(f"return {{main = function(s, n) local t = {{name = 'Jane', id = '7', when = 'today'}} "
                          f"local r for i = 1, n do r = {case.call} end return r end}}", "bench.lua", "main")
    box.begin_task()
    box.resume(box.start(loop), case.subject, n)
    used, _ = box._begin_task(budget)  # what the loop used of it
    return float(used) / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls per case (~5 s)")
    args = parser.parse_args(argv)
    scale = 0.25 if args.quick else 1.0
    c_lua = lua54.LuaRuntime()
    box = LuaSandbox(seed=1, limits=SandboxLimits(instructions=10**15))
    box.begin_task()
    print("string patterns: Lua's C matcher vs the sandbox's counted matcher (calls per second)\n")
    print(f"{'case':34s} {'C':>12s} {'sandbox':>12s} {'sandbox/C':>10s} {'instr/call':>11s}")
    ratios = []
    for case in CASES:
        source = LOOP.replace("{call}", case.call)
        c_fn = c_lua.execute(source)
        sandbox_fn = box.load(source, "=bench")
        c_table = c_lua.table_from({"name": "Jane", "id": "7", "when": "today"})
        sandbox_table = box.import_({"name": "Jane", "id": "7", "when": "today"})
        n = max(50, int(20000 * scale * (64 / max(64, len(case.subject)))))
        c_rate = per_second(c_fn, case.subject, c_table, n)
        sandbox_rate = per_second(sandbox_fn, case.subject, sandbox_table, n)
        ratio = sandbox_rate / c_rate
        ratios.append(ratio)
        print(f"{case.name:34s} {c_rate:12,.0f} {sandbox_rate:12,.0f} {ratio:10.2f} "
              f"{instructions_per_call(case, max(10, n // 10)):11,.0f}")
    geometric = 1.0
    for ratio in ratios:
        geometric *= ratio
    geometric **= 1 / len(ratios)
    print(f"\ngeometric mean sandbox/C: {geometric:.2f} (1.0 = as fast as C; the budget is "
          f"{SandboxLimits().instructions:,} instructions per workflow task)")
    print("command: python bench/pattern_bench.py" + (" --quick" if args.quick else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

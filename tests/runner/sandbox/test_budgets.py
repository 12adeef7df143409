"""docs/sandbox.md, Limits: budgets that cannot be dodged (issue 13).

- the instruction budget is per workflow task, shared by every wake-up of the driver within
  it, and a query or update validator neither resets nor uses it up;
- a limit cannot be swallowed (``load``'s reader, ``pcall``, coroutines, ``__close``) nor
  forged (``error``/``assert`` with a text that reads like one);
- C library functions charge the budget for the work they do, or run as counted Lua where
  user code decides how long they loop (``__len``); Lua patterns run on a counted matcher that
  answers exactly what Lua's own does.

Each runaway runs in a subprocess with a timeout (a hang must fail the test, not hang the
suite); the examples from the issue stop in well under a second of CPU (see the report of
bench/pattern_bench.py for the matcher's speed).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import lupa.lua54 as lua54
import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from runner.sandbox.driver import Blocking, Reply, WorkflowDriver
from runner.sandbox.failures import LimitExceeded, LuaRuntimeError
from runner.sandbox.runtime import LuaSandbox, SandboxLimits
from tests.support.sandboxes import command_sandbox, drive, workflow_main
from tests.support.worker import lua_worker

SMALL = SandboxLimits(memory=64 << 20, instructions=2_000_000)


def run(body: str, *, limits: SandboxLimits = SMALL) -> Any:
    """``body`` as line 2 of ``budget.lua`` in a fresh sandbox: what it returns (exported)."""
    box = LuaSandbox(seed=3, limits=limits)
    box.add_module("json")
    main = box.entrypoint("return {main = function()\n" + body + "\nend}", "budget.lua", "main")
    box.begin_task()
    finished, results = box.resume(box.start(main))
    assert finished
    return box.export(results[0], "result") if results else None


def outcomes(bodies: dict[str, str], *, instructions: int = 2_000_000, timeout: float = 20) -> dict[str, str]:
    """Run each body in a fresh sandbox, all in one subprocess: ``name -> "limit instructions at budget.lua:2"``,
    ``"error <message>"`` or ``"value <json>"``. A body that does not stop fails the test by name."""
    script = textwrap.dedent("""
        import json, sys
        from runner.sandbox.runtime import LuaSandbox, SandboxLimits
        from runner.sandbox.failures import LimitExceeded, LuaRuntimeError
        for name, body in json.loads(sys.argv[1]).items():
            box = LuaSandbox(seed=3, limits=SandboxLimits(instructions=int(sys.argv[2])))
            box.add_module("json")
            main = box.entrypoint("return {main = function()\\n" + body + "\\nend}", "budget.lua", "main")
            box.begin_task()
            try:
                finished, results = box.resume(box.start(main))
                out = "value " + json.dumps(box.export(results[0], "r") if results else None)
            except LimitExceeded as exc:
                out = f"limit {exc.limit} at {exc.where}"
            except LuaRuntimeError as exc:
                out = "error " + exc.message.split(chr(10))[0]
            print(json.dumps([name, out]), flush=True)
    """)
    try:
        done = subprocess.run([sys.executable, "-c", script, json.dumps(bodies), str(instructions)],
                              capture_output=True, text=True, timeout=timeout)
        lines = done.stdout.splitlines()
    except subprocess.TimeoutExpired as expired:
        out = expired.stdout.decode() if isinstance(expired.stdout, bytes) else (expired.stdout or "")
        finished = {json.loads(line)[0] for line in out.splitlines()}
        pytest.fail(f"did not stop within {timeout} s: {[name for name in bodies if name not in finished]}")
    result = dict(json.loads(line) for line in lines)
    assert set(result) == set(bodies), done.stderr
    return result


# ------------------------------------------------------------------------ the budget per workflow task

BURN = "local function burn(n) local x = 0 for i = 1, n do x = x + i end return x end\n"


async def run_rounds(task_ids: list[int]) -> tuple[Any, ...]:
    """30 rounds of ~800,000 instructions with a driver wake-up (a timer firing at once) between them."""
    async def tick() -> Reply:
        await asyncio.sleep(0)
        return ()

    sandbox = command_sandbox(limits=SMALL)
    driver = WorkflowDriver(sandbox, {"tick": lambda _cmd: Blocking(tick())})
    tasks = iter(task_ids)
    current = [next(tasks)]

    def task_id() -> int:
        return current[0]

    driver.task_id = task_id
    body = BURN + "for r = 1, 30 do burn(400000) cmd.call{op = 'tick'} end return 'done'"
    main = workflow_main(sandbox, body)
    original = driver._wait_for_completions

    async def next_activation() -> None:
        await original()
        current[0] = next(tasks, current[0])

    driver._wait_for_completions = next_activation  # type: ignore[method-assign]
    return await driver.run(main)


async def test_wake_ups_within_one_workflow_task_share_its_budget() -> None:
    # `for r = 1, 30 do burn(16e6) time.after(0):receive() end` at a small scale: every wake-up
    # is in the same workflow task (the same history length), so the budget is spent by round 3
    with pytest.raises(LimitExceeded) as hit:
        await run_rounds([7])
    assert (hit.value.limit, hit.value.where) == ("instructions", "wf.lua:2")


async def test_the_budget_starts_again_with_each_workflow_task() -> None:
    assert await run_rounds(list(range(10, 41))) == ("done",)


async def test_a_query_neither_resets_nor_uses_up_the_tasks_budget() -> None:
    sandbox = command_sandbox(limits=SMALL)
    driver = WorkflowDriver(sandbox, {"tick": lambda _cmd: Blocking(asyncio.sleep(0, result=()))})
    driver.task_id = lambda: 1
    query = sandbox.entrypoint("return {main = function() " + BURN + " return burn(600000) end}", "q.lua", "main")
    queried: list[Any] = []

    def tick(_cmd: Any) -> Blocking:
        queried.append(driver.call_now(query))   # ~1.2M of its own budget, between two wake-ups

        async def later() -> Reply:
            await asyncio.sleep(0)
            return ()
        return Blocking(later())

    driver.handlers["tick"] = tick
    # 3 x ~600,000 instructions in one task fit 2,000,000 only if the queries do not count...
    assert await driver.run(workflow_main(sandbox, BURN + "for r = 1, 3 do burn(300000) cmd.call{op = 'tick'} end "
                                                 "return 'done'")) == ("done",)
    assert len(queried) == 3
    # ...and do not give the task a fresh budget either: 4 rounds of ~700,000 are one too many
    sandbox = command_sandbox(limits=SMALL)
    driver = WorkflowDriver(sandbox, {"tick": tick})
    driver.task_id = lambda: 1
    query = sandbox.entrypoint("return {main = function() return 1 end}", "q.lua", "main")
    with pytest.raises(LimitExceeded, match="instructions"):
        await driver.run(workflow_main(sandbox, BURN + "for r = 1, 4 do burn(350000) cmd.call{op = 'tick'} end"))


PROJECT = """
version: "1.0"
namespace: budget
entries:
  - {name: client, kind: temporal.client}
  - {name: worker, kind: temporal.worker, client: budget:client}
  - name: rounds
    kind: workflow.lua
    source: file://rounds.lua
    modules: [time]
    meta: {temporal: {workflow: {worker: budget:worker}}}
  - name: steady
    kind: workflow.lua
    source: file://steady.lua
    modules: [time]
    meta: {temporal: {workflow: {worker: budget:worker}}}
"""
ROUNDS = BURN + """
-- 30 rounds of work, each followed by a timer: time.after(0) fires within the same workflow
-- task (one budget for all rounds), a real sleep ends the task (a budget per round)
local function main(input)
    for r = 1, 30 do
        burn(input.burn)
        if input.wait == "0" then time.after(0):receive() else time.sleep(input.wait) end
    end
    return "done"
end
return {main = main}
"""
STEADY = "return {main = function() time.sleep('300ms') return 'steady' end}"


async def test_a_workflow_cannot_spread_one_task_over_wake_ups_on_a_real_server(dev_server: Any,
                                                                             tmp_path: Path) -> None:
    for name, text in {"app.yaml": PROJECT, "rounds.lua": ROUNDS, "steady.lua": STEADY}.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    async with lua_worker(await dev_server.client(), tmp_path, workflow_limits=SMALL) as project:
        bystander = await project.start("budget:steady")
        one_task = await project.start("budget:rounds", {"burn": 400000, "wait": "0"})
        with pytest.raises(WorkflowFailureError) as failed:
            await one_task.result()
        assert await bystander.result() == "steady", "a run on the same worker completes meanwhile"
        # the same work with a real timer between rounds: 30 workflow tasks, each within budget
        assert await project.run("budget:rounds", {"burn": 400000, "wait": "1ms"}) == "done"
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError)
    assert (cause.type, cause.non_retryable) == ("LIMIT_EXCEEDED", True)
    assert cause.message.startswith("sandbox instructions limit exceeded at rounds.lua:1 (2,000,000 instructions "
                                    "per task)")


# ------------------------------------------------------------------------ limits cannot be caught or forged

def test_limits_cannot_be_swallowed() -> None:
    results = outcomes({
        "load's reader loops": "while true do load(function() while true do end end) end",
        "load's reader hits the memory limit": "local f, e = load(function() return string.rep('x', 1 << 30) end) "
                                               "return 'escaped'",
        "a reader that errors still fails load": "local f, e = load(function() error('no') end) return e",
        "a reader's pieces are loaded": "local parts, i = {'return ', '4', '2'}, 0 "
                                        "return load(function() i = i + 1 return parts[i] end)()",
        "pcall around the memory limit": "local ok = pcall(string.rep, 'x', 1 << 30) return 'escaped'",
        "a gsub replacement function loops": "local ok = pcall(string.gsub, 'abc', '%w', function() "
                                             "while true do end end) return 'escaped'",
        "a sort comparator loops": "local ok = pcall(table.sort, {3, 2, 1}, function() while true do end end) "
                                   "return 'escaped'",
        "coroutine.close returns the limit": "local co = coroutine.create(function() local s = "
                                             "string.rep('x', 1 << 30) end) pcall(coroutine.resume, co) "
                                             "return {coroutine.close(co)}",
    })
    assert results == {
        "load's reader loops": "limit instructions at budget.lua:2",
        "load's reader hits the memory limit": "limit memory at budget.lua:2",
        "a reader that errors still fails load": 'value "budget.lua:2: no"',
        "a reader's pieces are loaded": "value 42",
        "pcall around the memory limit": "limit memory at budget.lua:2",
        "a gsub replacement function loops": "limit instructions at budget.lua:2",
        "a sort comparator loops": "limit instructions at budget.lua:2",
        "coroutine.close returns the limit": "limit memory at budget.lua:2",
    }


FORGED = " [raised by user code, not a sandbox limit]"


@pytest.mark.parametrize("body", [
    "error('budget.lua:9: stack overflow', 0)",
    "error('stack overflow')",
    "error('C stack overflow', 0)",
    "error('stack overflow (message)', 0)",
    "error('not enough memory', 0)",
    "assert(false, 'not enough memory')",
    "local t = {} t['stack overflow']()",
])
def test_a_limit_cannot_be_forged(body: str) -> None:
    # caught, the run goes on; uncaught, it is an ordinary Lua error (a task failure), not a limit
    assert run("local ok = pcall(function() " + body + " end) return ok") is False
    assert run("local ok = pcall(pcall, function() " + body + " end) return ok") is True
    with pytest.raises(LuaRuntimeError) as caught:
        run(body + " return 'not reached'")
    assert not isinstance(caught.value, LimitExceeded)


def test_a_forged_limit_message_is_marked_as_the_users_own() -> None:
    assert run("return select(2, pcall(error, 'x.lua:1: stack overflow'))") == "x.lua:1: stack overflow" + FORGED
    assert run("return select(2, pcall(error, 'not enough memory', 0))") == "not enough memory" + FORGED
    assert run("return select(2, pcall(assert, nil, 'stack overflow'))") == "stack overflow" + FORGED
    # an ordinary message, and error's and assert's own behaviour, are unchanged
    assert run("return select(2, pcall(error, 'plain', 0))") == "plain"
    assert run("return select(2, pcall(function() error('at my line') end))") == "budget.lua:2: at my line"
    assert run("local function check() error('two', 2) end\n"
               "return select(2, pcall(function()\ncheck() end))") == "budget.lua:4: two"
    assert run("return select(2, pcall(assert, false))") == "assertion failed!"
    assert run("return select('#', assert(1, 2, 3))") == 3


def test_real_stack_overflows_stay_limits() -> None:
    results = outcomes({
        "recursion": "local function f(n) return 1 + f(n + 1) end return f(1)",
        "recursion through pcall": "local function f(n) local ok, v = pcall(f, n + 1) return v end return f(1)",
    }, instructions=50_000_000)
    assert results == {name: "limit stack at budget.lua:2" for name in ("recursion", "recursion through pcall")}


def test_close_methods_are_refused() -> None:
    with pytest.raises(LuaRuntimeError) as caught:
        run("local x <close> = setmetatable({}, {__close = function() error('replaced') end}) return 1")
    assert caught.value.message.startswith(
        "budget.lua:2: setmetatable: to-be-closed variables (__close) are not allowed")
    with pytest.raises(LuaRuntimeError, match="__close"):
        run("local mt = {} local t = setmetatable({}, mt) mt.__close = print return 1")


# ------------------------------------------------------------------------ C work charged to the budget

def test_c_loops_whose_length_user_code_decides_stop_at_the_limit() -> None:
    huge_len = "setmetatable({}, {__len = function() return math.maxinteger end})"
    results = outcomes({
        "table.remove(t, 1) with a huge __len": f"table.remove({huge_len}, 1)",
        "table.insert(t, 1, x) with a huge __len": "table.insert(setmetatable({}, {__len = function() "
                                                   "return math.maxinteger - 1 end}), 1, 'x')",
        "table.concat with a huge __len": "table.concat(setmetatable({}, {__len = function() return 1e15 end, "
                                          "__index = function() return 'x' end}))",
        "table.unpack with a huge __len": f"return select('#', table.unpack({huge_len}))",
        "table.move over a huge range": "table.move({}, 1, math.maxinteger, 1)",
    })
    assert results == {
        "table.remove(t, 1) with a huge __len": "limit instructions at budget.lua:2",
        "table.insert(t, 1, x) with a huge __len": "limit instructions at budget.lua:2",
        "table.concat with a huge __len": "limit instructions at budget.lua:2",
        "table.unpack with a huge __len": "error budget.lua:2: too many results to unpack",
        "table.move over a huge range": "limit instructions at budget.lua:2",
    }


def test_c_work_per_call_is_charged_by_length() -> None:
    # each body makes few VM instructions per iteration, but each call does megabytes of C work
    bodies = {
        "s:find('b', 1, true) on 8 MiB": "local s = string.rep('a', 8 << 20) for i = 1, 1e9 do "
                                         "s:find('b', 1, true) end",
        "table.insert(t, 1, x)": "local t = {} for i = 1, 1e6 do table.insert(t, 1, i) end",
        "table.remove(t, 1)": "local t = {} for i = 1, 3e5 do t[i] = i end for i = 1, 3e5 do table.remove(t, 1) end",
        "string.rep": "local s = string.rep('x', 1 << 20) for i = 1, 1e9 do local t = s:rep(8) end",
        "string.upper": "local s = string.rep('x', 8 << 20) for i = 1, 1e9 do local t = s:upper() end",
        "string.sub": "local s = string.rep('x', 8 << 20) for i = 1, 1e9 do local t = s:sub(2) end",
        "string.format %s": "local s = string.rep('x', 4 << 20) for i = 1, 1e9 do local t = ('%s'):format(s) end",
        "string.gsub": "local s = string.rep('a b ', 1 << 18) for i = 1, 1e9 do local t = s:gsub(' ', '') end",
        "table.concat": "local t = {} for i = 1, 1e5 do t[i] = 'abcdefgh' end for i = 1, 1e9 do local s = "
                        "table.concat(t) end",
        "table.unpack": "local t = {} for i = 1, 1e5 do t[i] = i end for i = 1, 1e9 do local n = "
                        "select('#', table.unpack(t)) end",
        "utf8.len": "local s = string.rep('a', 8 << 20) for i = 1, 1e9 do utf8.len(s) end",
        "utf8.codepoint": "local s = string.rep('a', 1e5) for i = 1, 1e9 do "
                          "local n = select('#', utf8.codepoint(s, 1, -1)) end",
        "json.encode": "local t = {} for i = 1, 20000 do t['k' .. i] = i end for i = 1, 1e9 do json.encode(t) end",
        "json.decode": "local s = json.encode({string.rep('x', 1 << 20)}) for i = 1, 1e9 do json.decode(s) end",
        "load": "local s = 'return ' .. string.rep('1 + ', 1e5) .. '1' for i = 1, 1e9 do load(s) end",
    }
    assert outcomes(bodies, timeout=60) == {name: "limit instructions at budget.lua:2" for name in bodies}


def test_backtracking_patterns_stop_at_the_limit() -> None:
    bodies = {
        ".-b on 80 KB": "local r = string.rep('a', 80000):find('.-b') return r",
        "%a-b on 60 KB": "local r = string.rep('a', 60000):find('%a-b') return r",
        "%b() on 200 KB": "local r = string.rep('(', 200000):find('%b()') return r",
        "a-a-a-a-a-b on 3 KB": "local r = string.rep('a', 3000):find('a-a-a-a-a-b') return r",
        ".-.-.-.-.-b on 3 KB": "local r = string.rep('a', 3000):match('.-.-.-.-.-b') return r",
        "gmatch": "for w in string.rep('a', 3000):gmatch('a-a-a-b') do end",
        "gsub": "local r = string.rep('a', 3000):gsub('a*a*a*b', 'x') return r",
    }
    assert outcomes(bodies) == {name: "limit instructions at budget.lua:2" for name in bodies}


def test_exporting_a_big_value_is_charged() -> None:
    box = LuaSandbox(seed=3, limits=SMALL)
    main = box.entrypoint("return {main = function() local t = {} for i = 1, 200000 do t['k' .. i] = i end "
                          "return t end}", "budget.lua", "main")
    box.begin_task()
    finished, results = box.resume(box.start(main))
    assert finished
    box.begin_task()
    with pytest.raises(LimitExceeded) as hit:
        box.export(results[0], "result")
    assert (hit.value.limit, hit.value.where) == ("instructions", "the export of result")
    small = LuaSandbox(seed=3, limits=SMALL)
    main = small.entrypoint("return {main = function() return {a = {1, 2, 3}, b = 'x'} end}", "budget.lua", "main")
    small.begin_task()
    assert small.export(small.resume(small.start(main))[1][0], "result") == {"a": [1, 2, 3], "b": "x"}


def test_long_metamethod_chains_are_refused() -> None:
    chain = "setmetatable: this would chain more than 10 tables through __index"
    bottom_up = "local t = {} for i = 1, 1990 do t = setmetatable({}, {__index = t}) end return 1"
    top_down = "local cur = {} for i = 1, 1990 do local nxt = {} setmetatable(cur, {__index = nxt}) cur = nxt end"
    loop = "local t = {} setmetatable(t, {__index = t}) return 1"
    for body in (bottom_up, top_down, loop):
        with pytest.raises(LuaRuntimeError) as caught:
            run(body)
        assert caught.value.message.startswith("budget.lua:2: " + chain), body
    with pytest.raises(LuaRuntimeError, match="through __newindex"):
        run("local t = {} for i = 1, 20 do t = setmetatable({}, {__newindex = t}) end")
    # ordinary inheritance is fine
    assert run("local Base = {hello = function() return 'hi' end} Base.__index = Base "
               "local Mid = setmetatable({}, Base) Mid.__index = Mid "
               "local Leaf = setmetatable({}, Mid) Leaf.__index = Leaf "
               "return setmetatable({}, Leaf).hello()") == "hi"


def test_the_charged_functions_still_work() -> None:
    assert run("local t = {1, 2, 3} table.insert(t, 1, 0) table.insert(t, 9) local r = table.remove(t, 2) "
               "return {t, r, table.remove(t), table.concat(t, ','), select('#', table.unpack(t))}") == [
        [0, 2, 3], 1, 9, "0,2,3", 3]
    proxied = ("local store = {10, 20, 30} local t = setmetatable({}, {__len = function() return #store end, "
               "__index = store, __newindex = store}) ")
    assert run(proxied + "table.insert(t, 1, 5) local r = table.remove(t, 2) "
                         "return {store, r, table.concat(t, '-'), {table.unpack(t)}}") == [
        [5, 20, 30], 10, "5-20-30", [5, 20, 30]]
    assert run("return {('abc'):rep(2, '-'), ('abc'):upper(), ('abc'):sub(2), utf8.len('h\\u{e9}'), "
               "utf8.char(72, 233), utf8.codepoint('h\\u{e9}', 1, -1)}") == [
        "abc-abc", "ABC", "bc", 2, "H\u00e9", 104, 233]
    with pytest.raises(LuaRuntimeError) as caught:
        run("local r = table.insert({}, 5, 'x') return r")
    assert caught.value.message == "budget.lua:2: bad argument #2 to 'insert' (position out of bounds)"
    assert run("return table.concat(setmetatable({}, {__len = function() return 3.0 end, __index = {1, 2, 3}}))") == (
        "123"), "a length C reads as an integer"
    for t in ("{1, {}, 3}", "setmetatable({}, {__len = function() return 3 end, __index = {1, {}, 3}})"):
        with pytest.raises(LuaRuntimeError) as caught:
            run(f"local r = table.concat({t}) return r")
        assert caught.value.message == "budget.lua:2: invalid value (table) at index 2 in table for 'concat'"


# ------------------------------------------------------------------------ the counted matcher is Lua's matcher

def test_the_matcher_is_loaded_only_by_a_run_that_uses_a_pattern() -> None:
    def heap_after(body: str) -> int:
        box = LuaSandbox(seed=3, limits=SMALL)
        main = box.entrypoint("return {main = function()\n" + body + "\nend}", "budget.lua", "main")
        box.begin_task()
        assert box.resume(box.start(main))[0]
        box.lua.execute("collectgarbage() collectgarbage()")  # the real one, in the runtime's own globals
        return box.memory_used()

    plain = heap_after("local t = {} table.insert(t, 'x') return ('a,b'):find(',', 1, true) .. ('abc'):upper() .. t[1]")
    patterned = heap_after("return ('abc'):find('b+')")
    assert patterned - plain > 20_000, (plain, patterned)


ATOMS = ["a", "b", ".", "%a", "%d", "%s", "%w", "%A", "%S", "%p", "%x", "%z", "[ab]", "[^a]", "[a-c]", "[%a_]",
         "[%]]", "[a-]", "[]]", "[^]]", "%%", "%.", "x", "(", ")", "()", "%b()", "%f[%w]", "%1", "%2", "$", "^",
         "-", "*", "+", "?", "[", "%", ".-", ".*", "[^%s]+", "\0", "\x80", "%b", "%f"]
CHARS = ["a", "a", "b", " ", "(", ")", "c", "1", "2", "_", "x", ".", "%", "\0", "\x80", "\n", "A", "-"]
HARNESS = r"""
local s, p, init, mode = ...
local out = {}
local function add(...)
    local n = select('#', ...)
    out[#out + 1] = n
    for i = 1, n do local v = select(i, ...) out[#out + 1] = type(v) .. ':' .. tostring(v) end
end
local ok, err = pcall(function()
    if mode == 'find' then add(string.find(s, p, init))
    elseif mode == 'plain' then add(string.find(s, p, init, true))
    elseif mode == 'match' then add(string.match(s, p, init))
    elseif mode == 'gmatch' then
        local n = 0
        for a, b, c in string.gmatch(s, p, init) do n = n + 1 add(a, b, c) if n > 50 then break end end
    elseif mode == 'gsub' then add(string.gsub(s, p, '<%0|%1>', init))
    elseif mode == 'gsub_function' then
        add(string.gsub(s, p, function(a, b)
            if a == 'b' then return nil end
            return '[' .. tostring(a) .. tostring(b) .. ']'
        end))
    elseif mode == 'gsub_table' then add(string.gsub(s, p, {a = 'A', b = false, [1] = 'one'}))
    end
end)
if not ok then out[#out + 1] = 'error:' .. tostring(err):gsub('^[^:]*:%d+: ', '') end
local bytes = {}
local text = table.concat(out, '|')
for i = 1, #text do bytes[i] = string.format('%02x', string.byte(text, i)) end
return table.concat(bytes)
"""


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_counted_matcher_answers_what_luas_own_does(seed: int) -> None:
    reference = lua54.LuaRuntime(encoding=None).execute("return function(...) " + HARNESS + " end")
    box = LuaSandbox(seed=3, limits=SandboxLimits(instructions=10**12))
    box.begin_task()
    main = box.entrypoint("return {main = function(...)\n" + HARNESS + "\nend}", "match.lua", "main")
    rng = random.Random(seed)
    mismatches = []
    for _ in range(1500):
        subject = "".join(rng.choice(CHARS) for _ in range(rng.randint(0, 14))).encode("latin-1")
        pattern = "".join(rng.choice(ATOMS) for _ in range(rng.randint(0, 6))).encode("latin-1")
        mode = rng.choice(["find", "plain", "match", "gmatch", "gsub", "gsub_function", "gsub_table"])
        init = rng.choice([None, None, 1, 2, -1, -3, 0, 20]) if mode in ("find", "plain", "match", "gmatch") else None
        want = reference(subject, pattern, init, mode.encode()).decode()
        got = box.resume(box.start(main), subject, pattern, init, mode)[1][0]
        if got != want:
            mismatches.append((mode, subject, pattern, init, bytes.fromhex(want), bytes.fromhex(got)))
    assert mismatches == []


def test_pattern_errors_read_as_luas_at_the_callers_line() -> None:
    cases = {
        "string.find('a', '%')": "malformed pattern (ends with '%')",
        "string.match('a', '[a')": "malformed pattern (missing ']')",
        "string.find('a', '(')": "unfinished capture",
        "string.find(string.rep('a', 300), string.rep('a?', 300))": "pattern too complex",
        "string.gsub('a', 'a', '%2')": "invalid capture index %2",
        "string.gsub('a', 'a', '%x')": "invalid use of '%' in replacement string",
        "string.gsub('a', 'a', {a = {}})": "invalid replacement value (a table)",
        "string.find({}, 'a')": "bad argument #1 to 'find' (string expected, got table)",
        "string.gmatch('a', 'a', {})": "bad argument #3 to 'gmatch' (number expected, got table)",
        "string.gsub('a', 'a', true)": "bad argument #3 to 'gsub' (string/function/table expected, got boolean)",
    }
    for call, message in cases.items():
        with pytest.raises(LuaRuntimeError) as caught:
            run(f"local r = {call} return r")
        assert caught.value.message == "budget.lua:2: " + message, call


async def test_what_a_run_is_charged_does_not_depend_on_the_interpreter() -> None:
    """Lua seeds string hashing per interpreter, so the order ``next`` walks a table differs between a
    run and its replay: iterating its keys in order (pairs, next, the JSON encoder) must still cost the same,
    or a run near
    its budget would hit the limit in one interpreter and not in the other."""
    body = ("local t = {} for i = 1, 300 do t['k' .. i] = i end\n"
            "local n = 0 for k in pairs(t) do n = n + 1 end\n"
            "table.sort({}) return n")

    async def outcome(budget: int) -> str:
        sandbox = command_sandbox(limits=SandboxLimits(memory=32 << 20, instructions=budget))
        try:
            await drive(body, sandbox=sandbox)
        except LimitExceeded as exc:
            return f"{exc.limit} limit"
        return f"done, charged {sandbox.instructions_used()}"

    seen = {budget: {await outcome(budget) for _ in range(8)} for budget in range(20_000, 120_001, 2_000)}
    assert {budget: o for budget, o in seen.items() if len(o) > 1} == {}
    outcomes = {o for found in seen.values() for o in found}
    assert "instructions limit" in outcomes and len(outcomes) == 2, f"one cost, straddled: {outcomes}"



def test_what_sorting_keys_is_charged_does_not_depend_on_where_the_sort_ends() -> None:
    """``pairs`` sorts the keys unmetered, in as many comparisons as the order ``next`` gives them
    (for string keys that order depends on the interpreter's hash seed), and charges for them.
    Wherever the count hook's next TICK falls (in the sort, in the charge), the task is charged
    the same: with ``before`` more instructions run first, the charge grows by one TICK every
    1,000 of them, never back down (a TICK lost, or one the sort's length moved, would)."""
    def charged(before: int) -> int:
        box = LuaSandbox(seed=3, limits=SandboxLimits(memory=32 << 20, instructions=10**9))
        main = box.entrypoint("return {main = function(before)\n"
                              "for i = 1, before do end\n"       # one instruction per step
                              "local t = {} for k = 1, 200 do t[k * 1000003] = true end\n"
                              "for k in pairs(t) do end\nend}", "order.lua", "main")
        box.begin_task()
        assert box.resume(box.start(main), before)[0]
        return box.instructions_used()

    costs = [charged(before) for before in range(0, 1001)]
    steps = [later - earlier for earlier, later in itertools.pairwise(costs)]
    assert sorted(set(steps)) == [0, 1000] and steps.count(1000) == 1, [
        (before, step) for before, step in enumerate(steps) if step]

"""docs/sandbox.md, Determinism: plain Lua behaves identically in every fresh interpreter (run and replay).

Lua 5.4 seeds string hashing per interpreter, so raw ``next`` order differs between a run
and its replay; the sandbox's ``pairs``/``next`` iterate in sorted key order instead
(numbers, then strings, then false, true). ``table.sort`` is a stable merge sort,
``math.random`` follows the run's seed, and nothing prints an address or reads the machine's
clock. Every probe here runs in 20 fresh LuaSandboxes and must give one answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import lupa.lua54 as lua54
import pytest

from runner.sandbox.failures import LuaRuntimeError
from runner.sandbox.runtime import LuaSandbox

FRESH = 20
CLOCK_NS = 1_700_000_000 * 10**9  # 2023-11-14T22:13:20Z


def run(body: str, *, seed: int = 42, clock: Callable[[], int] = lambda: CLOCK_NS) -> Any:
    box = LuaSandbox(seed=seed, clock_ns=clock)
    main = box.entrypoint("return {main = function()\n" + body + "\nend}", "probe.lua", "main")
    box.begin_task()
    finished, results = box.resume(box.start(main))
    assert finished
    return box.export(results[0], "result")


def in_fresh_interpreters(body: str, **kwargs: Any) -> Any:
    """The body's result, asserted identical in FRESH fresh interpreters."""
    results = [run(body, **kwargs) for _ in range(FRESH)]
    assert all(r == results[0] for r in results), f"results differ between interpreters: {results}"
    return results[0]


MIXED_KEYS = """
local t = {}
for i = 1, 30 do t["key" .. i] = i end
t[10], t[-3], t[2.5], t[1], t[0], t[1e9] = "a", "b", "c", "d", "e", "f"
t[true], t[false] = "T", "F"
t["Zebra"], t["apple"], t[""], t["10"] = 1, 2, 3, 4
"""


def test_raw_lua_next_order_differs_between_interpreters() -> None:
    """The premise: without the sandbox, string-key order changes from one interpreter to the next."""
    orders = set()
    for _ in range(FRESH):
        lua = lua54.LuaRuntime()
        orders.add(lua.execute("local t = {} for i = 1, 30 do t['key' .. i] = i end "
                               "local o = {} for k in next, t do o[#o + 1] = k end return table.concat(o, ',')"))
    assert len(orders) > 1, "Lua 5.4 did not randomize string hashing: this test proves nothing"


def test_pairs_order_is_sorted_and_identical_in_fresh_interpreters() -> None:
    order = in_fresh_interpreters(MIXED_KEYS + "local o = {} for k in pairs(t) do o[#o + 1] = tostring(k) end return o")
    strings = sorted(["Zebra", "apple", "", "10"] + [f"key{i}" for i in range(1, 31)])  # byte order
    assert order == ["-3", "0", "1", "2.5", "10", "1000000000", *strings, "false", "true"]


def test_next_walks_the_same_order_as_pairs() -> None:
    walked = in_fresh_interpreters(MIXED_KEYS + """
        local by_pairs, by_next = {}, {}
        for k in pairs(t) do by_pairs[#by_pairs + 1] = tostring(k) end
        local k = next(t)
        while k ~= nil do by_next[#by_next + 1] = tostring(k); k = next(t, k) end
        return {by_pairs = by_pairs, by_next = by_next, first = tostring(next(t)), empty = next({}) == nil}""")
    assert walked["by_next"] == walked["by_pairs"]
    assert walked["first"] == "-3" and walked["empty"] is True


def test_clearing_fields_during_pairs_is_allowed_and_ordered() -> None:
    seen = in_fresh_interpreters("""
        local t = {b = 2, a = 1, c = 3, d = 4}
        local seen = {}
        for k, v in pairs(t) do
            seen[#seen + 1] = k
            if k == "a" then t.c = nil end   -- removing a later key skips it
            t[k] = nil                       -- removing the current key is fine
        end
        return {seen = seen, left = next(t) == nil}""")
    assert seen == {"seen": ["a", "b", "d"], "left": True}


def test_pairs_honours_a_pairs_metamethod() -> None:
    assert in_fresh_interpreters("""
        local proxy = setmetatable({}, {__pairs = function() return function(_, i)
            i = (i or 0) + 1 if i <= 3 then return i, i * 10 end end, nil, nil end})
        local out = {} for k, v in pairs(proxy) do out[#out + 1] = v end return out""") == [10, 20, 30]


def test_next_rejects_a_key_that_is_not_in_the_table() -> None:
    box = LuaSandbox(seed=1)
    main = box.entrypoint("return {main = function()\nlocal k = next({a = 1}, 'zz') return k\nend}", "p.lua", "main")
    box.begin_task()
    with pytest.raises(LuaRuntimeError) as caught:
        box.resume(box.start(main))
    assert caught.value.message.startswith("p.lua:2: invalid key to 'next'")


def test_table_sort_is_stable_with_duplicates_and_a_comparator() -> None:
    result = in_fresh_interpreters("""
        local items = {}
        for i = 1, 300 do items[i] = {k = (i * 7) % 5, i = i} end
        table.sort(items, function(a, b) return a.k < b.k end)
        local out = {}
        for i, item in ipairs(items) do out[i] = {item.k, item.i} end
        local words = {"pear", "fig", "apple", "fig", "kiwi", "apple", "date"}
        table.sort(words)
        local by_len = {"ccc", "a", "bb", "dd", "e", "fff", "g"}
        table.sort(by_len, function(a, b) return #a > #b end)
        local nums = {3, 1.5, -2, 3, 0, 1.5, 10, -2}
        table.sort(nums)
        return {items = out, words = words, by_len = by_len, nums = nums}""")
    keys = [k for k, _ in result["items"]]
    assert keys == sorted(keys)
    for k in range(5):  # stable: equal keys keep their original order
        same = [i for key, i in result["items"] if key == k]
        assert same == sorted(same) and len(same) == 60
    assert result["words"] == ["apple", "apple", "date", "fig", "fig", "kiwi", "pear"]
    assert result["by_len"] == ["ccc", "fff", "bb", "dd", "a", "e", "g"], "ties keep their input order"
    assert result["nums"] == [-2, -2, 0, 1.5, 1.5, 3, 3, 10]


def test_table_sort_reports_misuse() -> None:
    box = LuaSandbox(seed=1)
    for body, message in [("table.sort(1)", "bad argument #1 to 'sort' (table expected, got number)"),
                          ("table.sort({2, 1}, 3)", "bad argument #2 to 'sort' (function expected, got number)"),
                          ("table.sort({1, 'a'})", "attempt to compare string with number")]:
        main = box.entrypoint("return {main = function()\n" + body + "\nend}", "p.lua", "main")
        box.begin_task()
        with pytest.raises(LuaRuntimeError) as caught:
            box.resume(box.start(main))
        # (the compare error is raised inside the sort, like Lua's own: no user line to point at)
        assert caught.value.message.split("\n")[0].endswith(message)


RANDOMS = ("local r = {} for i = 1, 8 do r[i] = math.random(1, 1000000) end "
           "r[9] = math.random() r[10] = math.random(6) return r")


def test_math_random_follows_the_run_seed() -> None:
    first = in_fresh_interpreters(RANDOMS, seed=42)
    assert all(1 <= v <= 1_000_000 for v in first[:8]) and 0 <= first[8] < 1 and 1 <= first[9] <= 6
    assert isinstance(first[8], float) and isinstance(first[0], int)
    other = run(RANDOMS, seed=43)
    assert other != first, "another seed gives another sequence"
    assert len(set(first[:8])) == 8, "a sequence, not a constant"


def test_no_addresses_in_text() -> None:
    text = in_fresh_interpreters("""
        local co = coroutine.create(print)
        return {tostring({}), tostring(print), tostring(co), tostring(setmetatable({}, {__name = "Order"})),
                string.format("%s %s %s", {}, print, co), string.format("%q", 1/3), tostring(1e100),
                tostring(2^63), tostring(-0.0), tostring(3), tostring(3.0)}""")
    assert text == ["table", "function", "thread", "Order", "table function thread", "0x1.5555555555555p-2",
                    "1e+100", "9.2233720368548e+18", "-0.0", "3", "3.0"]


def test_clock_functions_use_the_drivers_clock() -> None:
    now = [CLOCK_NS]
    box = LuaSandbox(seed=1, clock_ns=lambda: now[0])
    factory = box.load("return function(yield_command) return {tick = function() "
                       "return yield_command({op = 'tick'}) end} end", "=tick")
    box.add_module("tick", factory(box.yield_command))
    main = box.entrypoint("""return {main = function()
        local before = {os.time(), os.clock(), os.date("!%Y-%m-%dT%H:%M:%S")}
        tick.tick()
        return {before = before, after = {os.time(), os.clock(), os.date("%Y-%m-%dT%H:%M:%S")},
                table_time = os.time(os.date("*t"))}
    end}""", "clock.lua", "main")
    box.begin_task()
    thread = box.start(main)
    finished, _ = box.resume(thread)
    assert not finished
    now[0] += 90_500_000_000  # the driver's clock moved 90.5 s (a later workflow task)
    finished, results = box.resume(thread, True)
    assert finished
    assert box.export(results[0], "r") == {
        "before": [1_700_000_000, 0.0, "2023-11-14T22:13:20"],
        "after": [1_700_000_090, 90.5, "2023-11-14T22:14:50"],
        "table_time": 1_700_000_090,
    }


def test_the_machines_clock_and_time_zone_do_not_matter(monkeypatch: pytest.MonkeyPatch) -> None:
    body = "return {os.time(), os.date('%c'), os.date('%H:%M %Z'), os.time({year = 2000, month = 1, day = 1})}"
    utc = run(body)
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")  # UTC+14
    time.tzset()
    try:
        assert run(body) == utc
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert utc[0] == 1_700_000_000 and utc[1] == "Tue Nov 14 22:13:20 2023" and utc[3] == 946_728_000

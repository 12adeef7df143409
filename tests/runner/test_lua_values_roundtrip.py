"""SPEC §5.6/§5.3: lossless values across the Lua boundary, errors that name the path, and plain Lua
that behaves the same in every fresh interpreter."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.failures import FlowFailure
from runner.sandbox import LuaSandbox

SANDBOX = LuaSandbox(seed=3)

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text())
json_values = st.recursive(scalars, lambda children: st.lists(children, max_size=5)
                           | st.dictionaries(st.text(max_size=8), children, max_size=5), max_leaves=25)


def same(a: Any, b: Any) -> bool:
    """Equal, with ints and floats never confused (1 is not 1.0) and -0.0 equal to 0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_values_round_trip_losslessly(value: Any) -> None:
    back = SANDBOX.export(SANDBOX.import_(value, "input"), "input")
    assert same(back, value)


@pytest.mark.parametrize("value", [0, 1, -1, 2**63 - 1, -(2**63), 1.0, -0.5, 1e300, 5e-324, [], {}, [[]], [{}],
                                   {"a": []}, "ünïcödé ✓", {"k": None}, [None, 1, None], "\x7f\x00\n\"\\"])
def test_edge_values_round_trip(value: Any) -> None:
    back = SANDBOX.export(SANDBOX.import_(value, "input"), "input")
    assert same(back, value)
    if isinstance(value, float):
        assert isinstance(back, float) and math.isclose(back, value)


def lua_value(code: str) -> Any:
    main = SANDBOX.entrypoint("local json = ... return {main = function() " + code + " end}", "values.lua", "main")
    SANDBOX.begin_task()
    finished, results = SANDBOX.resume(SANDBOX.start(main))
    assert finished
    return results[0]


@pytest.mark.parametrize(("code", "message"), [
    ("local t = {} t.self = t return {input = {items = {1, 2, t}}}",
     "result.input.items[3].self: table refers to itself"),
    ("return {items = {1, 2, {price = 0/0}}}", "result.items[3].price: number -nan cannot be sent"),
    ("return {f = print}", "result.f: a function value cannot be sent"),
    ("return {s = '\\255\\254'}", "result.s: string is not valid UTF-8"),
    ("return {1, 2, x = 3}", "table mixes list items and named keys"),
    ("return {[1] = 'a', [3] = 'c'}", "result: array has holes"),
    ("return {[true] = 1}", "keys must be strings"),
    ("local t = {} local c = t for i = 1, 150 do c.n = {} c = c.n end return t", "nested more than 100 levels"),
    ("return 1/0", "number inf cannot be sent"),
])
def test_values_that_cannot_cross_name_their_path(code: str, message: str) -> None:
    value = lua_value(code)
    with pytest.raises(FlowFailure) as failed:
        SANDBOX.export(value, "result")
    assert failed.value.kind == "INVALID"
    assert message.replace("-nan", "nan") in failed.value.message.replace("-nan", "nan")


def test_lua_side_markers_and_special_values() -> None:
    assert SANDBOX.export(lua_value("return {}"), "r") == []
    assert SANDBOX.export(lua_value("return {a = 1, b = {2.0, 3}}"), "r") == {"a": 1, "b": [2.0, 3]}
    assert isinstance(SANDBOX.export(lua_value("return 2.0"), "r"), float)
    assert isinstance(SANDBOX.export(lua_value("return 2"), "r"), int)


def deterministic_probe(seed: int) -> Any:
    sandbox = LuaSandbox(seed=seed, clock_ns=lambda: 1_000_000_000_000)
    main = sandbox.entrypoint("""
        return {main = function()
            local t = {}
            for i = 1, 40 do t["key" .. i] = i; t[i * 7 % 13] = i end
            t[true], t[false], t[2.5] = 1, 2, 3
            local order = {}
            for k in pairs(t) do order[#order + 1] = tostring(k) end
            local first = next(t)
            local items = {}
            for i = 1, 200 do items[i] = {k = i % 5, i = i} end
            table.sort(items, function(a, b) return a.k < b.k end)
            local sorted = {}
            for i = 1, 200 do sorted[i] = items[i].i end
            local randoms = {}
            for i = 1, 5 do randoms[i] = math.random(1000000) end
            return {order = table.concat(order, ","), first = tostring(first), sorted = sorted,
                    randoms = randoms, clock = os.clock(), time = os.time(), table = tostring({}),
                    fmt = string.format("%s %s", print, {})}
        end}""", "probe.lua", "main")
    sandbox.begin_task()
    finished, results = sandbox.resume(sandbox.start(main))
    assert finished
    return sandbox.export(results[0], "probe")


def test_plain_lua_is_the_same_in_twenty_fresh_interpreters() -> None:
    first = deterministic_probe(42)
    for _ in range(19):
        assert deterministic_probe(42) == first
    assert first["order"].startswith("0,1,2,2.5,3,"), "numbers first, in numeric order"
    assert first["order"].endswith("key9,false,true"), "then strings, then false and true"
    assert first["first"] == "0"
    ks = [i % 5 for i in first["sorted"]]
    assert ks == sorted(ks)
    for k in range(5):  # the sort is stable: equal keys keep their order
        same_key = [i for i in first["sorted"] if i % 5 == k]
        assert same_key == sorted(same_key)
    assert first["table"] == "table" and first["fmt"] == "function table"
    assert first["time"] == 1000 and first["clock"] == 0.0


def test_math_random_follows_the_run_seed() -> None:
    assert deterministic_probe(42)["randoms"] == deterministic_probe(42)["randoms"]
    assert deterministic_probe(42)["randoms"] != deterministic_probe(43)["randoms"]

"""docs/sandbox.md, Values: values cross the Lua boundary losslessly, and what cannot cross names its path.

Round trips go Python -> Lua -> Python through ``LuaSandbox.import_`` / ``export`` (the path
every workflow input, activity argument and result takes), also through a Lua function and
through the sandbox's own ``json`` module. Failures are FlowFailure(INVALID) whose message
starts with the path of the offending value (``input.items[3].price: ...``), in both
directions, wherever hypothesis puts the bad value.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.sandbox.driver import ShimError
from runner.sandbox.failures import FlowFailure
from runner.sandbox.runtime import LuaSandbox
from runner.sandbox.values import first_problem, lua_args, lua_options, lua_value

SANDBOX = LuaSandbox(seed=3)
SANDBOX.add_module("json")

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
EDGE_INTS = st.sampled_from([0, 1, -1, 2**31, 2**53 + 1, 2**63 - 1, -(2**63), -(2**63) + 1, 2**62])
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=12)  # no lone surrogates
KEYS = st.from_regex(r"[a-z_][a-z0-9_]{0,5}", fullmatch=True)
scalars = st.none() | st.booleans() | INT64 | EDGE_INTS | FLOATS | TEXT
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5)
                      | st.dictionaries(TEXT, inner, max_size=5), max_leaves=30)
containers = st.recursive(st.lists(scalars, min_size=1, max_size=4) | st.dictionaries(KEYS, scalars, min_size=1,
                                                                                       max_size=4),
                          lambda inner: st.lists(inner, min_size=1, max_size=4)
                          | st.dictionaries(KEYS, inner, min_size=1, max_size=4), max_leaves=12)


def same(a: Any, b: Any) -> bool:
    """Equal with types kept: 1 is not 1.0, [] is not {}, and -0.0 keeps its sign."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return bool(a == b)


def lua(code: str, *args: Any) -> Any:
    """Run ``code`` as a Lua function body with ``args`` (imported) as ``...``; its first result, raw."""
    fn = SANDBOX.entrypoint("return {main = function(...)\n" + code + "\nend}", "values.lua", "main")
    SANDBOX.begin_task()
    finished, results = SANDBOX.resume(SANDBOX.start(fn), *[SANDBOX.import_(a, f"arg{i}") for i, a in enumerate(args)])
    assert finished
    return results[0] if results else None


# ---------------------------------------------------------------------------- round trips

@settings(max_examples=200, deadline=None)
@given(values)
def test_python_lua_python_is_lossless(value: Any) -> None:
    back = SANDBOX.export(SANDBOX.import_(value, "input"), "input")
    assert same(back, value)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_values_survive_lua_code_and_the_json_module(value: Any) -> None:
    assert same(SANDBOX.export(lua("local v = ... return v", value), "result"), value)
    assert same(SANDBOX.export(lua("local v = ... return json.decode(json.encode(v))", value), "result"), value)


@pytest.mark.parametrize("value", [
    0, 1, -1, 2**63 - 1, -(2**63), 2**53 + 1, 1.0, -0.0, 0.1, 1e300, 5e-324, 2.0**63, -1.5,
    "", "ünïcödé ✓", "𝄞 emoji 🎉", "nul\x00inside", "\x7f\x1f\n\"\\/",
    [], {}, [[]], [{}], {"a": []}, {"a": {}}, [None], [None, 1, None], {"k": None}, {"": 1, "a b": 2},
    {"items": [{"price": 9.99, "qty": 3}]}, [True, False, 1, 1.0, "1"],
])
def test_edge_values_round_trip_with_their_types(value: Any) -> None:
    assert same(SANDBOX.export(SANDBOX.import_(value, "input"), "input"), value)


def test_ints_and_floats_keep_their_lua_subtypes() -> None:
    kinds = SANDBOX.export(lua("local i, f, big, neg = ... return {math.type(i), math.type(f), math.type(big), "
                               "math.type(neg), big == math.maxinteger, neg == math.mininteger}",
                               *[1, 1.0, 2**63 - 1, -(2**63)]), "r")
    assert kinds == ["integer", "float", "integer", "integer", True, True]
    made_in_lua = SANDBOX.export(lua("return {3 // 1, 3 / 1, 2^53, math.maxinteger, math.mininteger, 2^63, "
                                     "-0.0, 7 % 2, 7.0 % 2}"), "r")
    assert same(made_in_lua, [3, 3.0, 9007199254740992.0, 2**63 - 1, -(2**63), 9.223372036854775808e18, -0.0,
                              1, 1.0])


def test_empty_tables_and_markers() -> None:
    assert same(SANDBOX.export(lua("return {}"), "r"), [])
    assert same(SANDBOX.export(lua("return json.object()"), "r"), {})
    assert same(SANDBOX.export(lua("return json.array()"), "r"), [])
    assert same(SANDBOX.export(lua("return json.object({a = 1})"), "r"), {"a": 1})
    assert same(SANDBOX.export(lua("return json.decode('{\"a\": {}, \"b\": []}')"), "r"), {"a": {}, "b": []})
    # decoded objects stay objects after Lua empties or fills them; arrays stay arrays
    assert same(SANDBOX.export(lua("local o, a = ... o.x = nil a[1] = nil return {o = o, a = a}",
                                   {"x": 1}, [1]), "r"), {"o": {}, "a": []})
    assert same(SANDBOX.export(lua("local o, a = ... o.y = 2 a[#a + 1] = 'b' return {o = o, a = a}", {}, []),
                               "r"), {"o": {"y": 2}, "a": ["b"]})


def test_null_inside_containers_is_json_null() -> None:
    assert SANDBOX.export(lua("local v = ... return {v[1] == json.null, v[2] == 1, v[3] == json.null, #v}",
                              [None, 1, None]), "r") == [True, True, True, 3]
    assert SANDBOX.export(lua("local v = ... return v.k == json.null", {"k": None}), "r") is True
    assert SANDBOX.export(lua("return {a = json.null, b = {json.null}}"), "r") == {"a": None, "b": [None]}
    assert SANDBOX.import_(None, "input") is None and SANDBOX.export(None, "r") is None


# ---------------------------------------------------------------------------- Lua -> Python errors

def export_error(code: str, *args: Any) -> str:
    value = lua(code, *args)
    with pytest.raises(FlowFailure) as failed:
        SANDBOX.export(value, "result")
    assert failed.value.kind == "INVALID" and failed.value.retryable is False
    return failed.value.message


@pytest.mark.parametrize(("code", "message"), [
    ("local t = {} t.self = t return {input = {items = {1, 2, t}}}",
     r"result\.input\.items\[3\]\.self: table refers to itself \(a cycle\); it cannot be sent"),
    ("return {items = {1, 2, {price = 0/0}}}",
     r"result\.items\[3\]\.price: number -?nan cannot be sent \(JSON has no NaN or infinity\)"),
    ("return {items = {{price = -1/0}}}", r"result\.items\[1\]\.price: number -inf cannot be sent"),
    ("return {on_done = print}", r"result\.on_done: a function value cannot be sent \(only nil, booleans, "
                                 r"numbers, strings and tables can\)"),
    ("return {worker = coroutine.create(print)}", r"result\.worker: a thread value cannot be sent"),
    ("return {signature = string.char(0xde, 0xad, 0xbe, 0xef)}",
     r"result\.signature: string is not valid UTF-8 \(binary data must be encoded, e\.g\. as hex, to cross "
     r"Temporal\)"),
    ("return {['odd key'] = {string.char(0xff)}}", r'result\["odd key"\]\[1\]: string is not valid UTF-8'),
    ("return {1, 2, x = 3}", r"result\[1\]: table mixes list items and named keys; use one or the other"),
    ("return {[1] = 'a', [3] = 'c'}", r"result: array has holes \(index 3 but only 2 items\); fill them with "
                                      r"json\.null or use string keys"),
    ("return {list = {[2] = 'b'}}", r"result\.list: array has holes \(index 2 but only 1 items\)"),
    ("return {[true] = 1}", r"result\[true\]: keys must be strings \(or 1\.\.n for a list\), got a boolean key"),
    ("return {[1.5] = 1}", r"result\[1\.5\]: keys must be strings \(or 1\.\.n for a list\), got a number key"),
    ("return {[{}] = 1}", r"result\[table\]: keys must be strings \(or 1\.\.n for a list\), got a table key"),
    ("return {[print] = 1}", r"result\[function\]: keys must be strings"),
    ("local t = {} local c = t for i = 1, 150 do c.n = {} c = c.n end return t",
     r"result(\.n){100}: tables nested more than 100 levels deep"),
    ("return 0/0", r"result: number -?nan cannot be sent"),
    ("return print", r"result: a function value cannot be sent"),
])
def test_lua_values_that_cannot_cross_name_their_path(code: str, message: str) -> None:
    assert re.fullmatch(message + ".*", export_error(code)), export_error(code)


def test_a_hundred_levels_is_fine() -> None:
    value = lua("local t = {} local c = t for i = 1, 99 do c.n = {} c = c.n end return t")
    depth, node = 0, SANDBOX.export(value, "result")
    while node:
        depth, node = depth + 1, node["n"]
    assert depth == 99


def path_of(keys: list[Any], root: str) -> str:
    return root + "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in keys)


@st.composite
def container_and_path(draw: st.DrawFn) -> tuple[Any, list[Any]]:
    """A nested container and the path (dict keys / 1-based list indexes) of one slot in it."""
    value = draw(containers)
    keys: list[Any] = []
    node: Any = value
    while True:
        key: Any = draw(st.sampled_from(sorted(node))) if isinstance(node, dict) else \
            draw(st.integers(min_value=1, max_value=len(node)))
        keys.append(key)
        child = node[key] if isinstance(node, dict) else node[key - 1]
        if not isinstance(child, list | dict) or not child or draw(st.booleans()):
            return value, keys
        node = child


BAD_IN_LUA = {
    "nan": ("0/0", r"number -?nan cannot be sent"),
    "inf": ("1/0", r"number inf cannot be sent"),
    "function": ("print", r"a function value cannot be sent"),
    "bytes": ("string.char(0x8f, 0xff, 0x00, 0xc3)", r"string is not valid UTF-8"),
    "cycle": ("v", r"table refers to itself \(a cycle\)"),
    "sparse": ("{[1] = 1, [3] = 3}", r"array has holes"),
    "mixed": ("{1, x = 2}", r"\[1\]: table mixes list items and named keys"),
}


@settings(max_examples=100, deadline=None)
@given(container_and_path(), st.sampled_from(sorted(BAD_IN_LUA)))
def test_a_bad_value_anywhere_in_lua_is_named_by_its_path(case: tuple[Any, list[Any]], bad: str) -> None:
    value, keys = case
    expression, reason = BAD_IN_LUA[bad]
    message = export_error(f"""local v, keys = ...
        local node = v
        for i = 1, #keys - 1 do node = node[keys[i]] end
        node[keys[#keys]] = {expression}
        return v""", value, keys)
    expected = re.escape(path_of(keys, "result")) + (r"" if bad == "mixed" else ": ") + reason
    assert re.match(expected, message), (message, expected)


# ---------------------------------------------------------------------------- Python -> Lua errors

def cyclic() -> list[Any]:
    loop: list[Any] = [1]
    loop.append(loop)
    return loop


BAD_IN_PYTHON = {
    "nan": (float("nan"), "number nan cannot be given to Lua (JSON has no NaN or infinity)"),
    "inf": (float("-inf"), "number -inf cannot be given to Lua (JSON has no NaN or infinity)"),
    "too big": (2**63, "integer 9223372036854775808 does not fit in 64 bits"),
    "too small": (-(2**63) - 1, "integer -9223372036854775809 does not fit in 64 bits"),
    "surrogate": ("ok \ud800", "string is not valid UTF-8 (it holds a lone surrogate)"),
    "bytes": (b"\x8f\xff", "a Python bytes cannot be given to Lua (only None, booleans, numbers, strings, "
                           "lists and dicts can)"),
    "set": ({1, 2}, "a Python set cannot be given to Lua"),
    "cycle": (cyclic(), "[2]: refers to itself (a cycle); it cannot be given to Lua"),
}


@settings(max_examples=100, deadline=None)
@given(container_and_path(), st.sampled_from(sorted(BAD_IN_PYTHON)))
def test_a_bad_python_value_anywhere_is_named_by_its_path(case: tuple[Any, list[Any]], bad: str) -> None:
    value, keys = case
    node: Any = value
    for key in keys[:-1]:
        node = node[key] if isinstance(node, dict) else node[key - 1]
    slot: Any = keys[-1] if isinstance(node, dict) else keys[-1] - 1
    node[slot] = BAD_IN_PYTHON[bad][0]
    with pytest.raises(FlowFailure) as failed:
        SANDBOX.import_(value, "input")
    separator = "" if bad == "cycle" else ": "
    assert failed.value.message.startswith(path_of(keys, "input") + separator + BAD_IN_PYTHON[bad][1])
    assert failed.value.kind == "INVALID" and failed.value.retryable is False


@pytest.mark.parametrize(("value", "message"), [
    ({"items": [1, 2, {"price": float("nan")}]},
     "input.items[3].price: number nan cannot be given to Lua (JSON has no NaN or infinity)"),
    (float("inf"), "input: number inf cannot be given to Lua (JSON has no NaN or infinity)"),
    (2**64, "input: integer 18446744073709551616 does not fit in 64 bits"),
    ("\udcff", "input: string is not valid UTF-8 (it holds a lone surrogate)"),
    ({"a b": {"c": object()}}, 'input["a b"].c: a Python object cannot be given to Lua'),
])
def test_python_values_that_cannot_cross_name_their_path(value: Any, message: str) -> None:
    with pytest.raises(FlowFailure) as failed:
        SANDBOX.import_(value, "input")
    assert failed.value.message.startswith(message)


def test_deep_python_data_is_refused_with_its_path() -> None:
    deep: list[Any] = []
    node = deep
    for _ in range(250):
        node.append([])
        node = node[0]
    with pytest.raises(FlowFailure) as failed:
        SANDBOX.import_(deep, "input")
    assert failed.value.message == "input" + "[1]" * 200 + ": nested more than 200 levels deep"


# ---------------------------------------------------------------------------- command fields (shim handlers)

def test_a_command_field_is_read_as_plain_data() -> None:
    packed = lua("return table.pack(1, nil, {a = json.array()}, 'x')")
    assert lua_args(SANDBOX, packed, "funcs.call argument") == [1, None, {"a": []}, "x"]
    assert lua_value(SANDBOX, None, "payload") is None
    assert lua_value(SANDBOX, lua("return {1, 2.5}"), "payload") == [1, 2.5]


def test_a_command_field_that_cannot_cross_is_a_shim_error_naming_it() -> None:
    with pytest.raises(ShimError) as refused:
        lua_args(SANDBOX, lua("return table.pack('ok', {f = function() end})"), "funcs.call argument")
    assert str(refused.value).startswith("funcs.call argument 2.f: ")
    with pytest.raises(ShimError, match=r"^payload\[1\]: "):
        lua_value(SANDBOX, lua("return {0/0}"), "payload")


@pytest.mark.parametrize(("code", "expected"), [
    ("return nil", {}),
    ("return {}", {}),
    ("return json.object()", {}),
    ("return {start_to_close_timeout = 5000, retry = {maximum_attempts = 2}}",
     {"start_to_close_timeout": 5000, "retry": {"maximum_attempts": 2}}),
])
def test_options_tables_read_as_dicts(code: str, expected: dict[str, Any]) -> None:
    assert lua_options(SANDBOX, lua(code), "with_options") == expected


def test_options_that_are_not_a_table_of_names_are_refused() -> None:
    with pytest.raises(ShimError, match=r"^with_options must be a table of option = value$"):
        lua_options(SANDBOX, lua("return {1, 2}"), "with_options")
    with pytest.raises(ShimError, match=r"^with_options must be a table of option = value$"):
        lua_options(SANDBOX, "fast", "with_options")


def test_first_problem_is_none_for_what_can_cross() -> None:
    assert first_problem({"a": [1, 2.5, None, True, "é"], "b": {}}, "input") is None
    shared = [1]
    assert first_problem([shared, shared], "input") is None, "the same list twice is not a cycle"


# ---------------------------------------------------------------------------- error objects

def with_errors(code: str, *args: Any) -> tuple[LuaSandbox, tuple[Any, ...]]:
    """Run ``code`` in a sandbox with the ``errors`` module (a FlowFailure argument arrives as an
    error object); the sandbox and the raw results."""
    box = LuaSandbox(seed=3)
    box.add_module("errors")
    fn = box.entrypoint("return {main = function(...)\n" + code + "\nend}", "errors.lua", "main")
    box.begin_task()
    finished, results = box.resume(box.start(fn), *[box.error_object(a) if isinstance(a, FlowFailure)
                                                    else box.import_(a) for a in args])
    assert finished
    return box, results


def test_a_failure_round_trips_through_a_lua_error_object() -> None:
    failure = FlowFailure("DECLINED", "card declined", retryable=False, details={"code": 51, "tags": ["a"]},
                          where="charge.lua:12")
    box, (seen, err) = with_errors("local e = ...\nreturn {e:kind(), e:message(), e:retryable(), "
                                   "e:details().code, e:where()}, e", failure)
    assert box.export(seen) == ["DECLINED", "card declined", False, 51, "charge.lua:12"]
    back = box.failure_of(err)
    assert (back.kind, back.message, back.retryable, back.details, back.where) == (
        "DECLINED", "card declined", False, {"code": 51, "tags": ["a"]}, "charge.lua:12")


@pytest.mark.parametrize(("code", "kind", "message", "retryable"), [
    ("return 'plain text'", "INTERNAL", "plain text", True),
    ("return 42", "INTERNAL", "error value 42", True),
    ("return {reason = 'x'}", "INTERNAL", "error value {'reason': 'x'}", True),
    ("return function() end", "INTERNAL", "error value a function value", True),
    ("return errors.new{kind = 'NOT_FOUND', message = 'gone', retryable = false}", "NOT_FOUND", "gone", False),
])
def test_any_lua_error_value_becomes_a_failure(code: str, kind: str, message: str, retryable: bool) -> None:
    box, (value,) = with_errors(code)
    failure = box.failure_of(value)
    assert (failure.kind, failure.message, failure.retryable) == (kind, message, retryable)

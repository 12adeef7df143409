"""docs/lua-api.md, Empty tables: json.object()/json.array() decide what an empty table is, wherever it leaves.

Every way a Lua value leaves the sandbox goes through the trusted encoder (runner/sandbox/values.py:
results and payloads through ``LuaSandbox.export``, activity arguments through ``lua_args``, log
fields, signal/query/update and process payloads through ``lua_value``/``lua_payload``, and the
``json.encode`` of user code): each of them is checked here with the same marked tables.
tests/runner/temporal/test_json_marks_e2e.py runs one through Temporal.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from runner.sandbox.runtime import LuaSandbox
from runner.sandbox.values import lua_args, lua_payload, lua_value
from tests.support.sandboxes import lua_error, run_main, shim_run

SANDBOX = LuaSandbox(seed=5)
SANDBOX.add_module("json")

MARKED = """
local decoded_list, decoded_object = json.decode('[]'), json.decode('{}')
local value = {
    plain = {},
    object = json.object(),
    array = json.array(),
    object_of_a_table = json.object({}),
    remarked_list = json.object(decoded_list),
    remarked_object = json.array(decoded_object),
    nested = {json.object(), {inner = json.object()}},
    filled = json.object({a = json.array()}),
}
"""
EXPECTED = {"plain": [], "object": {}, "array": [], "object_of_a_table": {}, "remarked_list": {},
            "remarked_object": [], "nested": [{}, {"inner": {}}], "filled": {"a": []}}


def lua(code: str) -> Any:
    fn = SANDBOX.entrypoint("return {main = function(...)\n" + code + "\nend}", "marks.lua", "main")
    SANDBOX.begin_task()
    finished, results = SANDBOX.resume(SANDBOX.start(fn))
    assert finished
    return results[0] if results else None


#: how the marked value leaves: (what the Lua code returns, how Python reads it)
EXITS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "workflow or activity result": ("value", lambda out: SANDBOX.export(out, "result")),
    "activity argument": ("table.pack(value)", lambda out: lua_args(SANDBOX, out, "funcs.call argument")[0]),
    "log fields, signal/query/update payload": ("value", lambda out: lua_value(SANDBOX, out, "payload")),
    "process message": ("value", lambda out: lua_payload(SANDBOX, out, "process.send payload")[0]),
    "json.encode": ("(json.encode(value))", json.loads),
}


@pytest.mark.parametrize("way_out", list(EXITS), ids=list(EXITS))
def test_every_way_out_keeps_the_marks(way_out: str) -> None:
    returned, read = EXITS[way_out]
    got = read(lua(MARKED + "return " + returned))
    assert got == EXPECTED
    assert json.dumps(got, sort_keys=True) == json.dumps(EXPECTED, sort_keys=True)  # {} is not [] in JSON


def test_a_marked_table_keeps_its_mark_and_can_be_marked_again() -> None:
    assert lua("local t = json.object() return getmetatable(t) .. ' ' .. getmetatable(json.array(t))") \
        == "json.object json.array"
    assert lua("local t = {} return rawequal(json.object(t), t)") is True  # marks in place, returns it
    assert SANDBOX.export(lua("local t = json.object() t.a = 1 t.a = nil return t"), "r") == {}


@pytest.mark.parametrize(("statement", "message"), [
    ("json.object('x')", "wf.lua:3: json.object: expected a table (or nothing, for a new one), got a string"),
    ("json.array(5)", "wf.lua:3: json.array: expected a table (or nothing, for a new one), got a number"),
    ("json.object(true)", "wf.lua:3: json.object: expected a table (or nothing, for a new one), got a boolean"),
    ("json.object(json.null)", "wf.lua:3: json.object: json.null is JSON null, not a table: write json.object() "
                               "for an empty one"),
    ("json.object(setmetatable({}, {__index = {}}))", "wf.lua:3: json.object: a table with a metatable cannot be "
                                                      "marked (only a plain table can): copy its fields into a "
                                                      "new table"),
    ("json.array(errors.new('X', 'y'))", "wf.lua:3: json.array: a flowctl.Error cannot be marked (only a plain "
                                         "table can): copy its fields into a new table"),
])
async def test_what_cannot_be_marked_fails_at_the_callers_line(statement: str, message: str) -> None:
    assert await lua_error(shim_run(["json", "errors"]), statement) == message


async def test_a_user_metatable_is_not_dropped_by_a_failed_mark() -> None:
    (kept,) = await run_main(shim_run(["json"]), """
local mt = {__index = {hello = function() return "hi" end}}
local t = setmetatable({}, mt)
pcall(json.object, t)
return t.hello()""")
    assert kept == "hi"

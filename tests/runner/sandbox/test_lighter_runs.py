"""A cached run no heavier than it must be (docs/performance.md, A cached run's memory, issue 17).

Inputs reach Lua as tables Python flattened (runner/sandbox/values.py, ``flattened``): no JSON
text crosses, so the JSON decoder is built only when user code calls ``json.decode``. Messages',
Payloads' and spawners' methods (process) and workflow's rarely used functions are parts built
on demand too, each once per runtime, answering as before, error lines included. And a run
collects its task's young garbage before it waits, so a parked run holds little more than its
live objects. On the Python side, a channel makes its queues and a run binds its process
handlers only when it first needs them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from runner.sandbox.channels import Channel
from runner.sandbox.driver import Blocking, Reply, WorkflowDriver
from runner.sandbox.failures import FlowFailure, LimitExceeded
from runner.sandbox.runtime import SandboxLimits
from runner.sandbox.values import MAX_IMPORT_DEPTH, flattened
from runner.shims.process import ProcessState, _bound
from tests.support.sandboxes import command_sandbox, lua_error, run_main, shim_run, workflow_main

# ---------------------------------------------------------------------- inputs without the decoder

VALUES: list[Any] = [
    None, True, 0, -(1 << 63), (1 << 63) - 1, 1.0, -2.5e-300, "", "é \u0000 \" \\ \U0001f600",
    [], {}, [None], [1, [2, [3, {}]]], {"a": None, "b": [], "c": {"d": [True, False]}},
    {1: "int key", 2.5: "float key", None: "null key"}, {True: "bool key"}, ("a", "tuple"),
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_an_input_arrives_as_json_would_bring_it(value: Any) -> None:
    sandbox = command_sandbox()
    assert sandbox.export(sandbox.import_(value, "input"), "input") == json.loads(json.dumps(value))


async def test_inputs_and_results_cross_without_building_the_decoder(built: list[str]) -> None:
    run = shim_run(["json"])
    value = run.sandbox.import_({"list": [1, None], "object": {}, "empty": []}, "input")
    assert await run_main(run, """local v = ...
        return getmetatable(v.object), getmetatable(v.empty), v.list[2] == json.null, #v.list, json.encode(v)""",
                          value) == ("json.object", "json.array", True, 2, '{"empty":[],"list":[1,null],"object":{}}')
    assert built == ["50_json_encode"]  # json.encode's JSON text writer, on demand too; never the decoder


def test_what_cannot_cross_is_refused_naming_its_path() -> None:
    sandbox = command_sandbox()
    deep: Any = []
    for _ in range(MAX_IMPORT_DEPTH):
        deep = [deep]
    cases: dict[str, Any] = {
        "input.a: number nan cannot be given to Lua (JSON has no NaN or infinity)": {"a": float("nan")},
        "input.a[2]: integer 18446744073709551616 does not fit in 64 bits": {"a": [1, 1 << 64]},
        "input.s: string is not valid UTF-8 (it holds a lone surrogate)": {"s": "\ud800"},
        "input[1]: a Python set cannot be given to Lua (only None, booleans, numbers, strings, lists and dicts "
        "can)": [set()],
        f"input{'[1]' * MAX_IMPORT_DEPTH}: nested more than {MAX_IMPORT_DEPTH} levels deep": deep,
    }
    for message, value in cases.items():
        with pytest.raises(FlowFailure) as caught:
            sandbox.import_(value, "input")
        assert (caught.value.kind, caught.value.message) == ("INVALID", message)
    assert sandbox.lua_type(sandbox.import_(deep[0], "input")) == "table", "200 levels still cross"


def test_an_input_too_large_for_the_heap_is_the_memory_limit_not_a_crash() -> None:
    # lupa puts Python values into Lua unprotected: a heap running out there would abort the process
    sandbox = command_sandbox(limits=SandboxLimits(memory=1 << 20))
    for value in (["x" * 100] * 20_000, [{"a": i} for i in range(20_000)], {"s": ["é" * 1000] * 600}):
        with pytest.raises(LimitExceeded) as caught:
            sandbox.import_(value, "input")
        assert caught.value.limit == "memory"
    fits = command_sandbox(limits=SandboxLimits(memory=1 << 20))
    assert fits.lua_type(fits.import_([{"a": i} for i in range(3000)], "input")) == "table", "what fits crosses"


def test_flattened_data_is_steps_and_plain_values() -> None:
    assert flattened({"a": [1, None], "b": {}}) == ("{k[vn}k{}}", ["a", 1, "b"])
    assert flattened(None) == ("n", [])


async def test_json_decode_is_built_on_first_use_once_and_answers_as_before(built: list[str]) -> None:
    run = shim_run(["json"])
    body = """local v = json.decode('{"a": [1, null, {}], "b": [], "s": "\\\\u00e9\\\\n"}')
        local _, bad = json.decode("[1,")
        local _, not_text = json.decode(5)
        return json.encode(v), bad:message(), not_text:message(), bad:where()"""
    expected = ('{"a":[1,null,{}],"b":[],"s":"é\\n"}',
                "json.decode: invalid JSON at offset 3: unexpected end of input",
                "json.decode expects a string, got number", "wf.lua:3")
    assert await run_main(run, body) == expected
    assert await run_main(run, body) == expected
    assert built == ["55_json_decode", "50_json_encode"]


# ---------------------------------------------------------------------- process and workflow parts


async def test_process_and_workflow_load_without_their_parts(built: list[str]) -> None:
    run = shim_run(["process", "workflow"])
    assert await run_main(run, "return type(process.spawn), type(workflow.version), type(workflow.info)") == (
        "function", "function", "function")
    assert built == []


async def test_the_process_part_is_built_on_first_use_once(built: list[str]) -> None:
    run = shim_run(["process"])
    body = "return getmetatable(process.with_context({a = 1})), getmetatable(process.with_options({}):with_name('x'))"
    assert await run_main(run, body) == ("flowctl.Spawner", "flowctl.Spawner")
    assert await run_main(run, body) == ("flowctl.Spawner", "flowctl.Spawner")
    assert [name for name in built] == ["process"]


async def test_the_workflow_part_is_built_on_first_use_once(built: list[str]) -> None:
    run = shim_run(["workflow"])
    first = await lua_error(run, "workflow.version('', 1, 2)")
    assert first == "wf.lua:3: workflow.version: change_id must be a non-empty string"
    assert await lua_error(run, "workflow.version('x', 2, 1)") == \
        "wf.lua:3: workflow.version: min_supported (2) is greater than max_supported (1)"
    assert built == ["workflow"]


async def test_the_parts_errors_name_the_users_line() -> None:
    run = shim_run(["process", "workflow"])
    cases = {
        "process.with_context(5)": "wf.lua:3: with_context: expected a table",
        "process.spawn(5)": "wf.lua:3: process: the first argument must be a workflow entry ID like "
                            "\"app:order_workflow\"",
        "process.with_options({}):with_name('')": "wf.lua:3: with_name: expected a non-empty string",
        "workflow.attrs({bad = 1})": "wf.lua:3: workflow.attrs: unknown key 'bad' (use search and memo)",
        "workflow.exec(5)": "wf.lua:3: workflow.exec: the first argument must be a workflow entry ID like "
                            "\"app:child\"",
        "workflow.on_query('q')": "wf.lua:3: workflow.on_query: expected a name and a function",
        "workflow.on_update('u', print, 5)": "wf.lua:3: workflow.on_update: expected a name, a function and an "
                                             "optional validator function",
    }
    for statement, message in cases.items():
        assert await lua_error(run, statement) == message, statement


async def test_process_handlers_are_bound_on_the_runs_first_process_command() -> None:
    run = shim_run(["process"])
    handlers = run.driver.handlers
    # one dispatcher per run for every process command; process.self is one function for all runs
    assert len({id(handler) for op, handler in handlers.items() if op.startswith("process.")
                and op != "process.self"}) == 1
    assert handlers["process.self"] is shim_run(["process"]).driver.handlers["process.self"]
    # every command the bound handlers answer goes through the dispatcher
    assert sorted(op for op in handlers if op.startswith("process.")) == sorted(["process.self", *_bound(run)])
    run.process = ProcessState(run, [{"topic": "hello", "payload": 1}])  # read when the first command comes
    assert await run_main(run, """local inbox = process.inbox()
        local events = process.events()
        local message = inbox:receive()
        return message:topic(), message:payload():data(), events ~= inbox""") == ("hello", 1, True)


def test_a_channel_holds_no_queue_until_it_needs_one() -> None:
    woken: list[tuple[Any, tuple[Any, ...]]] = []
    channel = Channel(1, None, lambda thread, reply: woken.append((thread, reply)))
    assert (channel.buffer, channel.receivers, channel.senders) == ((), (), ())  # no deque (~760 bytes) yet
    channel.put("a")
    channel.put("b")
    assert list(channel.buffer) == ["a", "b"]
    assert channel.receive("t1") == (True, "a", True)
    assert channel.receive("t2") == (True, "b", True)
    assert channel.receive("t3") is None
    channel.put("c")
    assert woken == [("t3", (True, "c", True))]
    rendezvous = Channel(2, 0, lambda thread, reply: woken.append((thread, reply)))
    assert rendezvous.send("s", "x") is None  # no buffer: the sender parks
    assert rendezvous.receive("r") == (True, "x", True)
    assert woken[-1] == ("s", (True,))
    assert not rendezvous.buffer and rendezvous.settled is False


# ---------------------------------------------------------------------- the collection before a wait


async def test_a_waiting_run_holds_none_of_its_tasks_young_garbage() -> None:
    held: list[int] = []
    # garbage of different sizes (where the collector's own cycle stands when the run waits differs:
    # without the collection before the wait, a parked run held 3 to 20 KiB of these)
    for count in (700, 2100, 3000):
        sandbox = command_sandbox()
        gate = asyncio.Event()

        async def wait(gate: asyncio.Event = gate) -> Reply:
            await gate.wait()
            return ()

        def waits(_cmd: Any, wait: Callable[[], Coroutine[Any, Any, Reply]] = wait) -> Blocking:
            return Blocking(wait())

        driver = WorkflowDriver(sandbox, {"wait": waits})
        body = f"for i = 1, {count} do local t = {{i, 'item ' .. i}} end\ncmd.call{{op = 'wait'}}\nreturn 'done'"
        run = asyncio.ensure_future(driver.run(workflow_main(sandbox, body)))
        for _ in range(5):
            await asyncio.sleep(0)
        assert not run.done(), "the run waits"
        before = sandbox.memory_used()
        sandbox.lua.execute("collectgarbage()")
        held.append(before - sandbox.memory_used())
        gate.set()
        assert await run == ("done",)
    assert max(held) < 1024, f"a parked run held {held} bytes of garbage"

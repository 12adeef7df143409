"""Every object type a shim hands to Lua keeps its metatable to itself, like ``errors.new`` objects do.

``getmetatable(obj)`` shows only the type's name, ``setmetatable(obj, ...)`` fails, ``obj.__index``
does not lead to the metatable, and a table dressed up with a metatable of the same
``__name`` is not taken for the real thing. The shims run on a real sandbox under a real
WorkflowDriver; the few commands that would need Temporal are answered by stand-ins.
"""

from __future__ import annotations

from typing import Any

import pytest

from runner.sandbox.driver import Handler, WorkflowDriver
from runner.sandbox.runtime import LuaSandbox
from runner.shims.workflow_modules import load_shim
from tests.support.sandboxes import command_sandbox, workflow_main

#: Lua expression -> the type name getmetatable() must show for the object it makes
OBJECTS = {
    "time.SECOND": "flowctl.Duration",
    "time.unix(1700000000)": "flowctl.Time",
    "channel.new(1)": "flowctl.Channel",
    "channel.new(1):case_receive()": "flowctl.Case",
    "process.self()": "flowctl.Pid",
    "process.inbox():receive()": "flowctl.Message",
    "process.inbox():receive():payload()": "flowctl.Payload",
    "process.with_options({})": "flowctl.Spawner",
    "funcs.new()": "flowctl.Executor",
    "funcs.async('app:charge')": "flowctl.Future",
    "errors.new('boom')": "flowctl.Error",
}


async def run(body: str) -> Any:
    """What ``body`` returns, as plain data, with time, channel, process, funcs and errors loaded."""
    sandbox = command_sandbox()
    driver = WorkflowDriver(sandbox, {})
    inbox = driver.new_channel(None)
    for _ in range(3):
        inbox.put(sandbox.lua.table_from({"topic": "greet", "from": "wf-sender", "payload": "hi"}))
    handlers: dict[str, Handler] = {
        "process.self": lambda _cmd: ("wf-1", "run-1"),
        "process.inbox": lambda _cmd: (inbox.id,),
        "funcs.start": lambda _cmd: (1,),
    }
    driver.handlers.update(handlers)
    _install(sandbox)
    (value,) = await driver.run(workflow_main(sandbox, body))
    return sandbox.export(value)


def _install(sandbox: LuaSandbox) -> None:
    channel, kernel = load_shim(sandbox, "channel")
    sandbox.add_module("channel", channel)
    for name in ("time", "process", "funcs"):
        sandbox.add_module(name, load_shim(sandbox, name, kernel))
    sandbox.add_module("errors")
    sandbox.add_module("json")


@pytest.mark.parametrize(("make", "name"), OBJECTS.items(), ids=list(OBJECTS.values()))
async def test_getmetatable_shows_only_the_type_name(make: str, name: str) -> None:
    assert await run(f"local obj = {make}\nreturn {{getmetatable(obj), type(getmetatable(obj))}}") == [
        name, "string"]


@pytest.mark.parametrize(("make", "name"), OBJECTS.items(), ids=list(OBJECTS.values()))
async def test_setmetatable_cannot_change_the_type(make: str, name: str) -> None:
    assert await run(f"""local obj = {make}
local ok, err = pcall(setmetatable, obj, {{__index = function() return "forged" end}})
return {{ok, err, getmetatable(obj)}}""") == [False, "cannot change a protected metatable", name]


@pytest.mark.parametrize(("make", "name"), OBJECTS.items(), ids=list(OBJECTS.values()))
async def test_fields_do_not_lead_to_the_metatable(make: str, name: str) -> None:
    # with `mt.__index = mt`, obj.__index would be the metatable itself (and obj.__tostring its function)
    assert await run(f"local obj = {make}\nreturn {{obj.__index == nil, obj.__tostring == nil, obj.__eq == nil}}") \
        == [True, True, True]


async def test_the_objects_still_work() -> None:
    assert await run("""
local d = 90 * time.SECOND
local t = time.unix(1700000000):add(d)
local message = process.inbox():receive()
local future = funcs.async('app:charge')
return {tostring(d), d:seconds(), d < time.HOUR, tostring(t), tostring(process.self()),
        message:topic(), tostring(message:from()), message:payload():data(), future:is_done(),
        channel.is_channel(channel.new(1)), time.Duration.is(d), time.Time.is(t)}
""") == ["1m30s", 90.0, True, "2023-11-14T22:14:50Z", "wf-1", "greet", "wf-sender", "hi", False, True, True,
         True]


async def test_a_table_named_like_a_flowctl_type_is_not_one() -> None:
    assert await run("""
local fake = setmetatable({ns = 5000000}, {__name = "flowctl.Duration"})
local fake_time = setmetatable({ns = 0}, {__name = "flowctl.Time"})
local fake_case = setmetatable({channel = channel.new(1), send = false}, {__name = "flowctl.Case"})
local ok, err = pcall(channel.select, {fake_case})
return {time.Duration.is(fake), time.Time.is(fake_time), json.encode(fake), json.encode(fake_time), ok,
        err:match("case 1 is not a channel case") ~= nil}
""") == [False, False, '{"ns":5000000}', '{"ns":0}', False, True]


async def test_a_real_duration_still_crosses_as_milliseconds() -> None:
    assert await run("return {json.encode({d = 3 * time.SECOND, t = time.unix(0)})}") == [
        '{"d":3000,"t":"1970-01-01T00:00:00Z"}']


async def test_shims_use_the_builtins_they_captured_when_they_loaded() -> None:
    # user code replacing setmetatable must not be handed the metatable of the next object made
    assert await run("""
local seen = {}
local real_setmetatable, real_getmetatable = setmetatable, getmetatable
setmetatable = function(t, mt) seen[#seen + 1] = mt return real_setmetatable(t, mt) end
getmetatable = function(v) seen[#seen + 1] = v return real_getmetatable(v) end
local d = time.SECOND * 2
local t = time.unix(5):add(d)
local spawner = process.with_options({}):with_name("x")
local executor = funcs.new():with_options({start_to_close_timeout = d})
return {#seen, tostring(t), executor.options.start_to_close_timeout}
""") == [0, "1970-01-01T00:00:07Z", 2000]

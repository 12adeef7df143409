"""Schemas as contracts (issue 12) on the real dev server, with one in-process worker for the module.

- ``flowctl run`` with an input the ``input_schema`` refuses: exit 1, the JSON path in the message,
  no workflow started;
- the same input sent by the plain ``temporal`` CLI: the run fails INVALID_INPUT (non-retryable)
  naming the path, in its first workflow task;
- a result the ``output_schema`` refuses: INVALID_OUTPUT; activities (``function.lua`` and
  ``function.python``) with a bad input or result fail non-retryably (attempt 1 of 5);
- an async completion (by workflow and activity id) its entry's ``output_schema`` refuses is refused;
- ``workflow.exec`` / ``ProcessClient.spawn`` refuse a child start with INVALID_INPUT before it starts.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from registry.contracts import ContractError
from runner.client.async_activities import ActivityRef, AsyncActivities, token_ids
from runner.client.process_client import ProcessClient
from runner.dev.binaries import find_temporal_cli
from runner.history import commands_of
from runner.sandbox.failures import FlowFailure
from tests.support.paths import REPO
from tests.support.replay import assert_replays
from tests.support.worker import LuaProject, lua_worker

ENTRIES = """\
version: "1.0"
namespace: ct
entries:
  - name: client
    kind: temporal.client
    address: ${env:TEMPORAL_ADDRESS:-localhost:7233}
  - name: worker
    kind: temporal.worker
    client: client
  - name: typed
    kind: workflow.lua
    source: file://typed.lua
    modules: [funcs, workflow]
    input_schema:
      type: object
      required: [n]
      properties:
        n: {type: integer}
        items: {type: array, items: {$ref: '#/$defs/item'}}
      $defs:
        item: {type: object, required: [qty], properties: {qty: {type: integer, minimum: 1}}}
    output_schema: {type: object, required: [doubled], properties: {doubled: {type: integer}}}
    meta: {temporal: {workflow: {worker: worker}}}
  - name: double
    kind: function.lua
    source: file://double.lua
    input_schema: {type: object, required: [n], properties: {n: {type: integer, minimum: 0}}}
    output_schema: {type: object, required: [doubled], properties: {doubled: {type: integer}}}
    options: {start_to_close_timeout: 10s, retry_policy: {maximum_attempts: 5, initial_interval: 100ms}}
    meta: {temporal: {activity: {worker: worker}}}
  - name: awaiting
    kind: function.lua
    source: file://awaiting.lua
    modules: [activity]
    output_schema: {type: object, required: [paid], properties: {paid: {type: boolean}}}
    options: {start_to_close_timeout: 60s}
    meta: {temporal: {activity: {worker: worker}}}
  - name: pydouble
    kind: function.python
    handler: tests.runner.temporal.test_contracts_e2e:py_double
    output_schema: {type: object, required: [doubled], properties: {doubled: {type: integer}}}
    options: {start_to_close_timeout: 10s, retry_policy: {maximum_attempts: 5, initial_interval: 100ms}}
    meta: {temporal: {activity: {worker: worker}}}
"""
TYPED_LUA = """\
local funcs = require("funcs")
local workflow = require("workflow")

local function failed(err)
    return {doubled = 0, kind = err:kind(), retryable = err:retryable(), message = err:message()}
end

local function main(input)
    local mode = input.mode
    if mode == "bad_output" then
        return {doubled = "many"}
    elseif mode == "act_bad_input" then
        local _, err = funcs.call("double", {n = -1})
        return failed(err)
    elseif mode == "act_bad_output" or mode == "py_bad_output" then
        local _, err = funcs.call(mode == "act_bad_output" and "double" or "pydouble", {n = 1, lie = true})
        return failed(err)
    elseif mode == "child_bad_input" then
        local _, err = workflow.exec("ct:typed", {n = "x"})
        return failed(err)
    elseif mode == "await" then
        local result, err = funcs.call("awaiting", {})
        if err ~= nil then return failed(err) end
        return {doubled = 0, paid = result.paid}
    elseif mode == "call" then
        local result = funcs.call("double", {n = input.n})
        return result
    end
    return {doubled = input.n * 2}
end

return {main = main}
"""
DOUBLE_LUA = """\
local function main(input)
    if input.lie then return {doubled = "two"} end
    return {doubled = input.n * 2}
end

return {main = main}
"""


AWAITING_LUA = """\
return {main = function()
    activity.heartbeat({token = activity.info().task_token})  -- where the test finds it
    return activity.pending()
end}
"""


def py_double(value: dict[str, Any]) -> dict[str, Any]:
    """The ``function.python`` handler of ``ct:pydouble`` (a result its output_schema refuses when asked to lie)."""
    return {"doubled": "two" if value.get("lie") else value["n"] * 2}


@pytest.fixture(scope="module")
def entries(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("contracts") / "entries"
    root.mkdir()
    (root / "app.yaml").write_text(ENTRIES)
    (root / "typed.lua").write_text(TYPED_LUA)
    (root / "double.lua").write_text(DOUBLE_LUA)
    (root / "awaiting.lua").write_text(AWAITING_LUA)
    return root


@pytest.fixture(scope="module")
async def served(dev_server: Any, entries: Path) -> AsyncIterator[LuaProject]:
    client = await dev_server.client()
    project: LuaProject
    async with lua_worker(client, entries) as project:
        yield project


async def _failure(project: LuaProject, input: Any) -> ApplicationError:
    with pytest.raises(WorkflowFailureError) as caught:
        await project.run("ct:typed", input)
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError), cause
    return cause


async def _workflow_task_failures(client: Client, workflow_id: str) -> int:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return sum(1 for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED)


async def test_a_good_run_completes_and_an_activity_result_passes(served: LuaProject) -> None:
    assert await served.run("ct:typed", {"n": 4, "items": [{"qty": 1}]}) == {"doubled": 8}
    assert await served.run("ct:typed", {"n": 5, "mode": "call"}) == {"doubled": 10}


async def test_flowctl_run_refuses_a_bad_input_before_anything_starts(served: LuaProject, dev_server: Any,
                                                                      entries: Path, tmp_path: Path) -> None:
    env = {**os.environ, "TEMPORAL_ADDRESS": dev_server.address, "FLOWCTL_REGISTRY": str(tmp_path / "reg.db"),
           "PYTHONPATH": str(REPO)}
    applied = await _cli(env, "apply", "--entries", str(entries))
    assert applied[0] == 0, applied[2]
    workflow_id = f"refused-{uuid.uuid4().hex[:8]}"
    code, out, err = await _cli(env, "run", "ct:typed", "--id", workflow_id, "--input",
                                '{"n": 1, "items": [{"qty": 2}, {"qty": 0}]}', "--wait")
    assert code == 1, (out, err)
    assert "$.items[1].qty" in err and "minimum" in err and "input_schema" in err, err
    assert "Traceback" not in err and "internal error" not in err
    client = await dev_server.client()
    described = [w async for w in client.list_workflows(f"WorkflowId = '{workflow_id}'")]
    assert described == [], "nothing may start"
    with pytest.raises(Exception, match="not found"):
        await client.get_workflow_handle(workflow_id).describe()


async def test_the_temporal_cli_start_fails_the_run_with_invalid_input_in_one_task(served: LuaProject,
                                                                                   dev_server: Any) -> None:
    client = await dev_server.client()
    workflow_id = f"raw-{uuid.uuid4().hex[:8]}"
    started = subprocess.run(
        [str(find_temporal_cli()), "workflow", "start", "--address", dev_server.address, "--namespace",
         dev_server.namespace, "--task-queue", served.task_queue, "--type", "ct:typed", "--workflow-id", workflow_id,
         "--input", json.dumps({"n": "x"})], capture_output=True, text=True, timeout=60)
    assert started.returncode == 0, started.stderr
    with pytest.raises(WorkflowFailureError) as caught:
        await asyncio.wait_for(client.get_workflow_handle(workflow_id).result(), 30)
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "INVALID_INPUT" and cause.non_retryable
    assert "$.n" in cause.message and "type" in cause.message, cause.message
    assert await _workflow_task_failures(client, workflow_id) == 0, "never a stuck or retried workflow task"


async def test_a_bad_result_fails_the_run_with_invalid_output(served: LuaProject) -> None:
    cause = await _failure(served, {"n": 1, "mode": "bad_output"})
    assert cause.type == "INVALID_OUTPUT" and cause.non_retryable
    assert "$.doubled" in cause.message and "output_schema" in cause.message
    assert cause.details and cause.details[0]["path"] == "$.doubled"
    assert cause.details[0]["schema_path"] == "#/properties/doubled/type"


@pytest.mark.parametrize(("mode", "kind", "path"), [("act_bad_input", "INVALID_INPUT", "$.n"),
                                                    ("act_bad_output", "INVALID_OUTPUT", "$.doubled"),
                                                    ("py_bad_output", "INVALID_OUTPUT", "$.doubled")])
async def test_activities_fail_non_retryably_on_a_broken_contract(served: LuaProject, mode: str, kind: str,
                                                                  path: str) -> None:
    handle = await served.start("ct:typed", {"n": 1, "mode": mode})
    result = await handle.result()
    assert result["kind"] == kind and result["retryable"] is False, result
    assert path in result["message"], result
    history = await handle.fetch_history()
    attempts = [e.activity_task_started_event_attributes.attempt for e in history.events
                if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED]
    assert attempts == [1], "retry_policy allows 5 attempts: a broken contract is never retried"


async def test_a_child_start_with_a_bad_input_is_an_error_value(served: LuaProject) -> None:
    handle = await served.start("ct:typed", {"n": 1, "mode": "child_bad_input"})
    result = await handle.result()
    assert result["kind"] == "INVALID_INPUT" and result["retryable"] is False
    assert "$.n" in result["message"]
    history = await handle.fetch_history()
    assert not [e for e in history.events
                if e.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED]


async def test_process_client_refuses_a_bad_input_with_invalid_input(served: LuaProject) -> None:
    procs = ProcessClient(served.client, served.source)
    with pytest.raises(FlowFailure) as caught:
        await procs.spawn("ct:typed", {"items": []}, name=f"pc-{uuid.uuid4().hex[:8]}")
    assert caught.value.kind == "INVALID_INPUT" and not caught.value.retryable
    assert caught.value.details["rule"] == "required"
    assert await procs.exec("ct:typed", {"n": 21}) == {"doubled": 42}


async def test_an_async_completion_is_checked_against_the_output_schema(served: LuaProject) -> None:
    handle = await served.start("ct:typed", {"n": 1, "mode": "await"})
    activity_id = await _pending_activity(handle)
    activities = AsyncActivities(served.client, served.source)
    ref = ActivityRef(workflow_id=handle.id, activity_id=activity_id)
    with pytest.raises(ContractError) as caught:
        await activities.complete(ref, {"paid": "yes"})
    assert caught.value.kind == "INVALID_OUTPUT" and "$.paid" in caught.value.message
    await activities.complete(ref, {"paid": True})  # still open: the refused result was never sent
    assert await handle.result() == {"doubled": 0, "paid": True}


async def test_a_completion_by_task_token_is_checked_too(served: LuaProject) -> None:
    handle = await served.start("ct:typed", {"n": 1, "mode": "await"})
    token = await _heartbeat_token(handle)
    activities = AsyncActivities(served.client, served.source)
    ref = ActivityRef(task_token=token)
    with pytest.raises(ContractError) as caught:
        await activities.complete(ref, {"paid": 1})
    assert caught.value.kind == "INVALID_OUTPUT" and "$.paid" in caught.value.message
    await activities.complete(ref, {"paid": False})
    assert await handle.result() == {"doubled": 0, "paid": False}


def test_token_ids_reads_only_what_it_understands() -> None:
    assert token_ids(b"") is None and token_ids(b"\xff\xff") is None and token_ids(b"\x12\x05ab") is None
    ids = token_ids(b"\x0a\x02ns\x12\x04wf-1\x1a\x03r-1\x20\x05\x32\x017")
    assert ids == ActivityRef(workflow_id="wf-1", run_id="r-1", activity_id="7")


async def _heartbeat_token(handle: Any, timeout: float = 30) -> str:
    """The task token the awaiting activity put in its heartbeat details."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        for pending in (await handle.describe()).raw_description.pending_activities:
            if pending.heartbeat_details.payloads:
                return str(json.loads(pending.heartbeat_details.payloads[0].data)["token"])
        await asyncio.sleep(0.1)
    raise AssertionError(f"{handle.id}: no heartbeat with a token")


async def _pending_activity(handle: Any, timeout: float = 30) -> str:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        pending = (await handle.describe()).raw_description.pending_activities
        if pending:
            return str(pending[0].activity_id)
        await asyncio.sleep(0.1)
    raise AssertionError(f"{handle.id}: no pending activity")


async def _cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """``python -m cli ARGS`` without blocking the in-process worker's event loop."""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "cli", *args, env=env, cwd=str(REPO),
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_a_run_recorded_before_the_schema_replays_unchecked(dev_server: Any, served: LuaProject,
                                                                   tmp_path: Path) -> None:
    """No apply strands a live run: a history recorded without the contracts' patch marker (a run started
    before the schema was enforced) replays on the schema'd revision without checking its input or result."""
    old = tmp_path / "old"
    old.mkdir()
    (old / "app.yaml").write_text(_without_schemas(ENTRIES))
    (old / "typed.lua").write_text(TYPED_LUA)
    (old / "double.lua").write_text(DOUBLE_LUA)
    (old / "awaiting.lua").write_text("return {main = function() return activity.pending() end}\n")
    client = await dev_server.client()
    async with lua_worker(client, old) as unchecked:
        handle = await unchecked.start("ct:typed", {"n": 3, "mode": "bad_output"})
        assert await handle.result() == {"doubled": "many"}
    history = await handle.fetch_history()
    await assert_replays(served.source, history, follow_pins=False, times=2)


def _without_schemas(text: str) -> str:
    """ENTRIES with the typed workflow's input_schema and output_schema left out (what an older tree had)."""
    kept, skipping = [], False
    for line in text.splitlines():
        if line.startswith("    input_schema:") or line.startswith("    output_schema:"):
            skipping = line.rstrip().endswith(":")
            continue
        if skipping and line.startswith("      "):
            continue
        skipping = False
        kept.append(line)
    return "\n".join(kept) + "\n"


async def test_the_contracts_patch_marker_is_recorded_but_not_listed_as_a_command(served: LuaProject) -> None:
    handle = await served.start("ct:typed", {"n": 2})
    assert await handle.result() == {"doubled": 4}
    history = await handle.fetch_history()
    markers = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED]
    assert len(markers) == 1, "the run recorded flowctl's contracts patch"
    assert commands_of(history.events) == ["complete"], "flowctl's own patch is not the Lua code's command"

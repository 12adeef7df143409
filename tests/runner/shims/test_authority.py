"""docs/sandbox.md, Determinism and authority: what a workflow may do to others, and when it may only read.

- ``process.monitor/link/cancel/terminate`` act on the caller's own children only: anything else is a
  NOT_FOUND error naming the rule (the red team terminated an unrelated workflow by its id);
- a query handler or update validator may only read: a command that changes the run (a listener, an
  option, a monitor, a query handler, a memo, a random draw...) is a NONDETERMINISTIC_CALL error and
  changes nothing, since Temporal does not replay what a query did;
- a message carries a ``from`` only when it is a string (a memo entry any client may write could hold
  anything, which lupa would hand Lua as a Python object);
- memo keys under ``flowctl.`` are flowctl's: no user memo sets one.

Real Lua, real shims, real driver; what needs Temporal itself is out of reach here (the end-to-end
side: tests/runner/shims/test_process_examples.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from registry.errors import FlowError
from registry.revision import Revision
from runner.client.start import start_workflow
from runner.revision_source import ProjectRevisionSource
from runner.sandbox.driver import WorkflowDriver
from runner.shims.process import Child, ProcessState
from runner.shims.run_context import WorkflowRun
from runner.shims.workflow_modules import install_workflow_modules
from runner.temporal.options import normalize
from tests.support.sandboxes import command_sandbox, workflow_main

MODULES = ["process", "time", "channel", "funcs", "json", "workflow", "errors", "ctx", "crypto", "uuid"]
CHILD = Revision(entry_id="app:child", kind="workflow.lua", digest="1" * 64,
                 data={"meta": {"temporal": {"workflow": {"worker": "app:worker"}}}}, source="return {}",
                 source_name="child.lua")


def process_run(carried: list[Mapping[str, Any]] | None = None) -> WorkflowRun:
    """A workflow run of ``app:wf`` with every module and its process state (the mailbox: ``carried``)."""
    sandbox = command_sandbox()
    driver = WorkflowDriver(sandbox, {})
    revision = Revision(entry_id="app:wf", kind="workflow.lua", digest="0" * 64, data={"modules": MODULES},
                        source=None, source_name=None)
    run = WorkflowRun(sandbox=sandbox, driver=driver, revision=revision, source=ProjectRevisionSource([CHILD]),
                      context={"tenant": "t-1"})
    run.process = ProcessState(run, carried or [])
    driver.handlers.update(install_workflow_modules(run, MODULES))
    return run


async def run_body(run: WorkflowRun, body: str) -> Any:
    (value,) = await run.driver.run(workflow_main(run.sandbox, body))
    return run.sandbox.export(value, "result")


# ---------------------------------------------------------------------- only one's own children

async def test_a_workflow_acts_only_on_its_own_children() -> None:
    run = process_run()
    run.process.children["wf-child"] = Child("wf-child")
    result = await run_body(run, """
        local out = {}
        for _, op in ipairs({'monitor', 'link', 'unmonitor', 'cancel', 'terminate'}) do
            local ok, err = process[op]('wf-unrelated', 'because')
            out[op] = {ok = ok == nil, kind = err:kind(), retryable = err:retryable(), message = err:message(),
                       target = err:details().workflow_id}
        end
        out.child = {process.unmonitor('wf-child'), process.monitor('wf-child'), process.link('wf-child')}
        return out
    """)
    assert result.pop("child") == [True, True, True], "its own child: monitor and link work"
    for op, outcome in result.items():
        assert outcome == {"ok": True, "kind": "NOT_FOUND", "retryable": False, "target": "wf-unrelated",
                           "message": f"process.{op}: wf-unrelated is not a child of this workflow (a workflow can "
                                      "monitor, link, cancel and terminate only the workflows it spawned)"}, op
    assert run.process.links == {"wf-child"} and run.driver._operations == {}, "nothing was started for a stranger"


async def test_a_pid_of_someone_else_is_no_child_either() -> None:
    run = process_run()
    run.driver.handlers["process.self"] = lambda _cmd: ("wf-1", "run-1")
    assert await run_body(run, """
        local me = process.self()
        local _, err = process.terminate(me)
        return err:message()
    """) == ("process.terminate: wf-1 is not a child of this workflow (a workflow can monitor, link, cancel and "
             "terminate only the workflows it spawned)")


# ---------------------------------------------------------------------- queries and validators only read

REFUSED_IN_QUERIES = {
    "process.listen('topic')": "process.listen",
    "process.inbox()": "process.inbox",
    "process.events()": "process.events",
    "process.set_options({trap_links = true})": "process.set_options",
    "process.unmonitor('wf-child')": "process.unmonitor",
    "process.monitor('wf-child')": "process.monitor",
    "process.link('wf-child')": "process.link",
    "process.send('wf-2', 'hello', 1)": "process.send",
    "workflow.on_query('other', print)": "workflow.on_query",
    "workflow.on_update('other', print)": "workflow.on_update",
    "workflow.attrs({memo = {note = 'x'}})": "workflow.attrs",
    "workflow.version('change', 1, 2)": "workflow.version",
    "uuid.v4()": "uuid.v4",
    "crypto.random_bytes(4)": "crypto.random_bytes",
    "time.sleep(0)": "time.sleep",
    "time.after('1s')": "time.after",
    "channel.new(1)": "channel.new",
    "funcs.call('app:x')": "funcs.call",
    "funcs.async('app:x')": "funcs.start",
    "coroutine.spawn(print)": "coroutine.spawn",
}


@pytest.mark.parametrize(("call", "op"), REFUSED_IN_QUERIES.items(), ids=list(REFUSED_IN_QUERIES))
async def test_a_query_handler_may_not_change_the_run(call: str, op: str) -> None:
    run = process_run()
    run.process.children["wf-child"] = Child("wf-child", monitored=True)
    handler = run.sandbox.compile(f"return function() local ok, err = pcall(function() return {call} end) "
                                  "return ok, err end", "query.lua")()
    ok, err = run.driver.call_now(handler)
    failure = run.sandbox.failure_of(err)
    assert (ok, failure.kind, failure.retryable) == (False, "NONDETERMINISTIC_CALL", False)
    assert failure.message.startswith(f"{op} cannot be used in a query handler or update validator: they may "
                                      "only read (what they do is not in the workflow's history")
    state = run.process
    assert (state.listeners, state.inbox, state.trap_links, state.links, run.queries, run.updates) == (
        {}, None, False, set(), {}, {}), "the refused command changed nothing"
    assert state.children["wf-child"].monitored and run.driver._operations == {}


async def test_a_query_handler_may_read() -> None:
    run = process_run()
    handler = run.sandbox.compile("return function(x) "
                                  "return {d = time.parse_duration('90s'):seconds(), ctx = ctx.get('tenant'), "
                                  "json = json.encode({x})} end", "query.lua")()
    (value,) = run.driver.call_now(handler, 7)
    assert run.sandbox.export(value) == {"d": 90.0, "ctx": "t-1", "json": "[7]"}


# ---------------------------------------------------------------------- who a message is from

async def test_a_message_is_from_a_string_pid_or_from_nobody() -> None:
    # start messages arrive in the memo flowctl.messages, which any client can write
    run = process_run([{"topic": "order", "payload": 1, "from": {"evil": True}},
                       {"topic": "order", "payload": 2, "from": ["a", "b"]},
                       {"topic": "order", "payload": 3, "from": 42},
                       {"topic": "order", "payload": 4, "from": "wf-parent"},
                       {"topic": {"not": "a topic"}, "payload": 5}, {"payload": 6}])
    assert await run_body(run, """
        local inbox, out = process.inbox(), {}
        for i = 1, 4 do
            local m = inbox:receive()
            local from = m:from()
            out[i] = {m:payload():data(), from == nil and 'nobody' or tostring(from), type(rawget(m, '_from'))}
        end
        local more = channel.select{inbox:case_receive(), default = true}
        return {out, more.default}
    """) == [[[1, "nobody", "nil"], [2, "nobody", "nil"], [3, "nobody", "nil"], [4, "wf-parent", "table"]], True]


async def test_flowctl_channels_only_receive() -> None:
    run = process_run()
    result = await run_body(run, """
        local out = {}
        for name, ch in pairs({listen = process.listen('t'), inbox = process.inbox(), events = process.events()}) do
            local ok, err = pcall(ch.send, ch, 'forged')
            out[name] = err
        end
        return out
    """)
    assert set(result) == {"listen", "inbox", "events"}
    assert all(err.endswith("this channel only receives (time.after, process.listen, process.inbox and "
                            "process.events deliver what happens to the workflow; make your own with channel.new)")
               for err in result.values()), result


# ---------------------------------------------------------------------- reserved memo keys

@pytest.mark.parametrize("key", ["flowctl.messages", "flowctl.context", "flowctl.revision", "flowctl.anything"])
def test_start_options_cannot_set_flowctl_memo_keys(key: str) -> None:
    with pytest.raises(FlowError) as refused:
        normalize({"memo": {"note": 1}}, {"temporal.workflow.memo": {key: [{"topic": "t", "from": {"x": 1}}]}})
    assert refused.value.message == (f"temporal.workflow.memo: memo key '{key}' is reserved for flowctl (keys "
                                     "starting with 'flowctl.'); name your memo keys differently")
    assert normalize({"memo": {"flowctl_note": 1}})["memo"] == {"flowctl_note": 1}, "only the prefix is reserved"


async def test_flowctl_run_option_memo_cannot_set_them() -> None:
    # `flowctl run --option memo=...` goes through start_workflow; it refuses before connecting
    worker = Revision(entry_id="app:worker", kind="temporal.worker", digest="2" * 64, data={}, source=None,
                      source_name=None)
    with pytest.raises(FlowError, match=r"memo key 'flowctl\.messages' is reserved for flowctl"):
        await start_workflow(None, ProjectRevisionSource([CHILD, worker]), "app:child",  # type: ignore[arg-type]
                             options={"memo": {"flowctl.messages": []}})


async def test_a_parent_and_the_workflow_itself_cannot_set_them_either() -> None:
    run = process_run()
    result = await run_body(run, """
        local spawner = process.with_options({memo = {['flowctl.messages'] = {{topic = 't', from = {x = 1}}}}})
        local ok, err = pcall(spawner.spawn, spawner, 'app:child')
        local ok2, err2 = pcall(workflow.attrs, {memo = {['flowctl.revision'] = 'abc'}})
        return {err, err2}
    """)
    assert result == [
        "process.spawn: temporal.workflow.memo: memo key 'flowctl.messages' is reserved for flowctl (keys starting "
        "with 'flowctl.'); name your memo keys differently (flowctl writes the run's revision, context and start "
        "messages there itself)",
        "workflow.attrs: memo key 'flowctl.revision' is reserved for flowctl (keys starting with 'flowctl.'); name "
        "your memo keys differently"]

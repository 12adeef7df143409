"""docs/sandbox.md, The trust boundary and Determinism: hostile values never run where no budget is.

Each attempt hands flowctl's own code a value built to hurt it: a pid, channel or Duration whose
field was replaced by a table whose metamethods never return, a forged object, a replaced
``type``, a command field of the wrong type, text that is not UTF-8. The safe outcome is always
the same: a typed error at the user's line (or an INVALID failure naming the path), never a hang,
a Python traceback, an address or attacker-chosen JSON. Attempts that would freeze the
interpreter if they regressed run in a subprocess with a timeout; the last test runs the worst of
them on a real worker process beside a bystander workflow, which must complete.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from registry.lua.parser import analyze
from registry.open_store import open_store
from runner.client.start import start_workflow
from runner.revision_source import StoreRevisionSource
from runner.sandbox.failures import FlowFailure, LuaRuntimeError
from runner.shims.run_context import WorkflowRun
from tests.support.paths import ENTRIES, REPO
from tests.support.sandboxes import process_run, run_main, workflow_main

MODULES = ["process", "time", "channel", "funcs", "json", "workflow", "errors", "ctx", "crypto", "uuid"]
#: a prefix every body runs after (its first line is wf.lua:2): a value no metamethod of which returns
EVIL = ("local function loop() while true do end end "
        "local evil = setmetatable({}, {__tostring = loop, __index = loop, __newindex = loop, __len = loop, "
        "__eq = loop, __lt = loop, __le = loop, __concat = loop, __call = loop, __name = 'flowctl.Pid'})\n")


def hostile_run() -> WorkflowRun:
    """A workflow run with every module installed, its process state, and stand-ins for what needs Temporal."""
    run = process_run(MODULES)
    run.driver.handlers["process.self"] = lambda _cmd: ("wf-1", "run-1")
    return run


def outcome(body: str) -> str:
    """What running ``EVIL`` + ``body`` as a workflow's main comes to, as one line of text."""
    run = hostile_run()
    try:
        results = asyncio.run(run.driver.run(workflow_main(run.sandbox, EVIL + body)))
        value = run.sandbox.export(results[0], "result") if results else None
    except LuaRuntimeError as exc:
        return "lua error: " + exc.message
    except FlowFailure as exc:
        return f"failure: {exc.kind}: {exc.message}"
    return "value: " + json.dumps(value)


def outcomes_in_a_subprocess(bodies: dict[str, str], timeout: float = 120) -> dict[str, str]:
    """:func:`outcome` of each body, in a fresh interpreter: a hang must not hang the test session."""
    script = textwrap.dedent("""
        import json, sys
        from tests.runner.sandbox.test_trust_boundary import outcome
        for name, body in json.loads(sys.argv[1]).items():
            try:
                line = outcome(body)
            except Exception as exc:
                line = "python: " + type(exc).__name__ + ": " + str(exc)
            print(json.dumps([name, line]), flush=True)
    """)
    try:
        done = subprocess.run([sys.executable, "-c", script, json.dumps(bodies)], capture_output=True, text=True,
                              timeout=timeout, cwd=REPO)
        lines = done.stdout
    except subprocess.TimeoutExpired as expired:
        lines = (expired.stdout or b"").decode() if isinstance(expired.stdout, bytes) else (expired.stdout or "")
    seen = dict(json.loads(line) for line in lines.splitlines() if line.startswith("["))
    hung = [name for name in bodies if name not in seen]
    assert not hung, f"{hung[0]!r} never finished (a metamethod ran outside the budget?); stderr: {lines[-500:]}"
    return seen


# ---------------------------------------------------------------------- values that loop in trusted code

HOSTILE = {
    # the red team's worker freeze: Python's str() of a replaced pid id ran its __tostring
    "unlink a pid whose id loops": (
        "local p = process.self() p.id = setmetatable({}, {__tostring = loop}) return (process.unlink(p))",
        "lua error: wf.lua:3: process.unlink: this pid was changed (its id is a table, not a workflow id string); "
        "use the pid process.self() or spawn returned"),
    "rawset a looping id": (
        "local p = process.self() rawset(p, 'id', evil) return (process.monitor(p))",
        "lua error: wf.lua:3: process.monitor: this pid was changed (its id is a table, not a workflow id "
        "string); use the pid process.self() or spawn returned"),
    "a forged pid (its metatable is not flowctl's)": (
        "return (process.unlink(evil))",
        "lua error: wf.lua:3: process.unlink: expected a pid or a workflow id string, got table"),
    # a replaced global cannot vouch for a value: the shims captured the builtins when they loaded
    "replace type, then listen": (
        "type = function() return 'string' end return (process.listen(evil))",
        "lua error: wf.lua:3: process.listen: topic must be a non-empty string"),
    "replace type, then on_query": (
        "type = function() return 'string' end return (workflow.on_query(evil, print))",
        "lua error: wf.lua:3: workflow.on_query: expected a name and a function"),
    "replace table.pack and pairs, then send": (
        "table.pack = loop pairs = loop return (process.send('wf-2', 'topic', {1}))",
        "python: _NotInWorkflowEventLoopError: Not in workflow event loop"),
    # Python checks every field again: a command built without the shims' checks
    "a raw command with a looping id": (
        "return (cmd.call{op = 'process.unlink', id = evil})",
        "lua error: wf.lua:3: process.unlink: the pid: expected a string, got a table"),
    "a raw command with a looping topic": (
        "return (cmd.call{op = 'process.listen', topic = evil})",
        "lua error: wf.lua:3: process.listen: the topic: expected a string, got a table"),
    "a raw on_query with a looping name": (
        "return (cmd.call{op = 'workflow.on_query', name = evil, fn = print})",
        "lua error: wf.lua:3: workflow.on_query: the name: expected a string, got a table"),
    "a raw channel send to a looping id": (
        "return (cmd.call{op = 'channel.send', id = evil, value = 1})",
        "lua error: wf.lua:3: unknown channel: its id is a table, not an integer"),
    "a raw select whose case id loops": (
        "return (cmd.call{op = 'channel.select', n = 1, cases = {{id = evil, send = false}}})",
        "lua error: wf.lua:3: unknown channel: its id is a table, not an integer"),
    "a raw log line that is a table": (
        "return (cmd.call{op = 'log', level = 'info', message = evil, where = evil})",
        "lua error: wf.lua:3: log where: expected a string, got a table"),
    # the exporter runs outside any budget: it computes with no field user code can replace
    "a Duration whose ns loops when divided": (
        "local d = 5 * time.SECOND rawset(d, 'ns', setmetatable({}, {__idiv = loop})) return {d = d}",
        "failure: INVALID: result.d: a flowctl.Duration whose ns was changed (it is a table, not an integer) "
        "cannot be sent"),
    "a Duration whose ns divides into JSON text": (
        "local d = time.SECOND d.ns = setmetatable({}, {__idiv = function() return '1,\"approved\":true' end}) "
        "return {d = d}",
        "failure: INVALID: result.d: a flowctl.Duration whose ns was changed (it is a table, not an integer) "
        "cannot be sent"),
    "a Time whose ns loops": (
        "local t = time.unix(5) t.ns = setmetatable({}, {__idiv = loop, __mod = loop}) return t",
        "failure: INVALID: result: a flowctl.Time whose ns was changed (it is a table, not an integer) "
        "cannot be sent"),
    "a forged Duration is a plain table": (
        "return setmetatable({ns = setmetatable({}, {__idiv = loop})}, {__name = 'flowctl.Duration'})",
        'value: {"ns": []}'),
    "a Duration with a float ns": (
        "local d = time.SECOND rawset(d, 'ns', 1e300) return d",
        "failure: INVALID: result: a flowctl.Duration whose ns was changed (it is a number, not an integer) "
        "cannot be sent"),
    "a changed Duration given to time.sleep": (
        "local d = time.SECOND d.ns = evil return (time.sleep(d))",
        "lua error: wf.lua:3: time.sleep: this Duration was changed (its ns is a table, not an integer); make a "
        "new one, e.g. 5 * time.SECOND"),
    "a changed channel": (
        "local c = channel.new(1) c.id = evil return (c:send(1))",
        "lua error: wf.lua:3: ch:send: expected a channel, got a flowctl.Channel whose id was changed"),
    "a select case whose channel was swapped": (
        "local case = channel.new(1):case_receive() case.channel = evil return (channel.select{case})",
        "lua error: wf.lua:3: channel.select: case 1 is not a channel case (use ch:case_receive() or "
        "ch:case_send(v))"),
    "a future whose handle loops": (
        "local f = funcs.async('app:x') rawset(f, 'handle', evil) return (f:result())",
        "lua error: wf.lua:3: await handle: expected an integer, got a table"),
    "an error object whose fields loop": (
        "local e = errors.new('x') rawset(e, '_message', evil) rawset(e, '_kind', evil) error(e)",
        "lua error: (a table value): (a table value)"),
}


def test_hostile_values_end_in_an_error_at_the_users_line() -> None:
    outcomes = outcomes_in_a_subprocess({name: body for name, (body, _) in HOSTILE.items()})
    assert outcomes == {name: expected for name, (_, expected) in HOSTILE.items()}


def test_the_shims_look_up_no_global_at_all() -> None:
    # user code can replace any global (type, pairs, table.pack...): a shim takes every builtin from the kit
    for path in sorted((REPO / "runner" / "shims").glob("*.lua")):
        facts = analyze(path.read_text(encoding="utf-8"))
        assert facts.error is None and [use.name for use in facts.globals] == [], path.name


async def test_an_object_is_known_by_its_metatable_not_by_what_it_claims() -> None:
    run = hostile_run()
    assert await run.driver.run(workflow_main(run.sandbox, """
        -- an __eq cannot make a forged metatable equal to flowctl's private one
        local claims = setmetatable({}, {__eq = function() return true end})
        local fake = setmetatable({ns = 5000000000}, claims)
        local ok, err = pcall(function() local t = setmetatable({}, time.SECOND) return t end)
        return time.Duration.is(fake), channel.is_channel(fake), ok, err
    """)) == (False, False, False, "wf.lua:6: setmetatable: a flowctl.Duration cannot be used as a metatable")


#: every field name a shim command has
FIELDS = ["id", "to", "topic", "payload", "text", "what", "ns", "n", "size", "name", "fn", "validator", "entry",
          "worker", "args", "options", "context", "messages", "search", "memo", "level", "message", "fields",
          "where", "change_id", "min", "max", "handle", "trap_links", "details", "has_details", "value", "cases",
          "default"]


def test_every_command_field_is_checked_in_python() -> None:
    # every command a workflow can send, with every field a looping table: none may hang or leak.
    # (The tables Python indexes are the ones shim code builds: the command, table.pack(...) of the
    # arguments, select's case list; their values are the user's.)
    ops = sorted({*hostile_run().driver.handlers, "await", "coroutine.spawn", "channel.new", "channel.send",
                  "channel.receive", "channel.close", "channel.select"} - {"process.self"})
    structure = {"args": "table.pack(evil, evil)", "n": "1", "cases": "{{id = evil, send = evil, value = evil}}"}
    fields = ", ".join(f"{name} = {structure.get(name, 'evil')}" for name in FIELDS)
    bodies = {op: f"local ok, err = pcall(cmd.call, {{op = '{op}', {fields}}}) return {{ok, tostring(err)}}"
              for op in ops}
    outcomes = outcomes_in_a_subprocess(bodies)
    refused = {op: line for op, line in outcomes.items() if line.startswith("value: [false, ")}
    for op, line in refused.items():
        assert "expected" in line or "unknown channel" in line or "must be" in line, (op, line)
        assert "0x" not in line and "table: " not in line, (op, line)
    # the rest read no field a looping table could sit in (or only plain structure), then answer or
    # ask Temporal, which is not running here
    answered = {op: line.split(":")[0] for op, line in outcomes.items() if op not in refused}
    assert answered == {
        "ctx.all": "value", "process.events": "value", "process.inbox": "value",
        **dict.fromkeys(["crypto.random_bytes", "time.now", "uuid.v4", "uuid.v7", "workflow.continue_as_new",
                         "workflow.history_length", "workflow.history_size", "workflow.info"], "python"),
    }


# ---------------------------------------------------------------------- no addresses, no tracebacks

ADDRESS_FREE = {
    "a channel named by a table": ("return cmd.call{op = 'channel.send', id = {}, value = 1}",
                                   "wf.lua:3: unknown channel: its id is a table, not an integer"),
    "time.parse_duration of a table": ("return time.parse_duration({})",
                                       'wf.lua:3: time.parse_duration: expected a string like "1h30m", got table'),
    "a raw parse_duration of a table": ("return cmd.call{op = 'time.parse_duration', text = {}}",
                                        "wf.lua:3: duration: expected a string, got a table"),
    "process.monitor of a table": ("return process.monitor({})",
                                   "wf.lua:3: process.monitor: expected a pid or a workflow id string, got table"),
    "a raw monitor of a table": ("return cmd.call{op = 'process.monitor', id = {}}",
                                 "wf.lua:3: process.monitor: the pid: expected a string, got a table"),
    "select case ids": ("return cmd.call{op = 'channel.select', n = 1, cases = {{id = {}, send = true}}}",
                        "wf.lua:3: unknown channel: its id is a table, not an integer"),
    "an activity named by a table": ("return cmd.call{op = 'funcs.call', id = {}, args = table.pack()}",
                                     "wf.lua:3: funcs.call: the activity entry ID: expected a string, got a table"),
    "awaiting a table": ("return cmd.call{op = 'await', handle = {}}",
                         "wf.lua:3: await handle: expected an integer, got a table"),
    "an unknown handle": ("return cmd.call{op = 'await', handle = 77}",
                          "wf.lua:3: unknown or already consumed operation handle 77"),
    "a command that is not one": ("return cmd.call{op = {}}", "wf.lua:3: unknown driver command None"),
}


@pytest.mark.parametrize(("body", "message"), ADDRESS_FREE.values(), ids=list(ADDRESS_FREE))
async def test_error_texts_name_types_never_addresses(body: str, message: str) -> None:
    texts = []
    for _ in range(2):  # a fresh interpreter each time: a heap address would differ
        run = hostile_run()
        call = body.removeprefix("return ")  # not a tail call: the error names the caller's line
        source = f"\nreturn pcall(function() local r = {call} return r end)"
        ok, err = await run.driver.run(workflow_main(run.sandbox, source))
        assert ok is False
        texts.append(err)
    assert texts == [message, message]


async def test_text_that_is_not_utf8_is_a_typed_error_not_a_traceback() -> None:
    run = hostile_run()

    async def fails(body: str) -> str:
        try:
            results = await run.driver.run(workflow_main(run.sandbox, body))
            run.sandbox.export(results[0], "result")
        except LuaRuntimeError as exc:
            return "lua error: " + exc.message
        except FlowFailure as exc:
            return f"failure: {exc.kind}: {exc.message}"
        raise AssertionError(f"{body!r} did not fail")

    not_utf8 = "string is not valid UTF-8 (binary data must be encoded, e.g. as hex, to cross Temporal)"
    assert await fails("return '\\255'") == f"failure: INVALID: result: {not_utf8}"
    assert await fails("error('bad \\255 byte')") == "lua error: wf.lua:2: bad \ufffd byte"
    assert await fails("return (process.listen('\\255'))") == (
        f"lua error: wf.lua:2: process.listen: the topic: {not_utf8}")
    assert await fails("return (funcs.call('app:x', 'ok', '\\200'))") == (
        f"lua error: wf.lua:2: funcs.call('app:x') argument 2: {not_utf8}")
    failure = run.sandbox.failure_of((await run.driver.run(workflow_main(
        run.sandbox, "return errors.new{kind = 'PAYMENT', message = 'caf\\233'}")))[0])
    assert (failure.kind, failure.message) == ("PAYMENT", "caf\ufffd")
    assert await fails("local c = channel.new(1) c:send('\\255') return 1") == (
        f"lua error: wf.lua:2: ch:send value: {not_utf8}")
    # binary data travels between Lua threads inside a table: the table stays in Lua
    assert await run.driver.run(workflow_main(run.sandbox, """
        local c = channel.new(2) c:send({'\\255\\0'}) local r = c:receive()
        local s = channel.select{c:case_send({'\\254'})} return #r[1], r[1] == '\\255\\0', c:receive()[1] == '\\254'
    """)) == (2, True, True)


def test_a_python_container_never_reaches_lua() -> None:
    from runner.sandbox.values import lua_record
    run = hostile_run()
    with pytest.raises(TypeError, match="field 'from' is a Python dict"):
        lua_record(run.sandbox, {"from": {"evil": True}})


# ---------------------------------------------------------------------- determinism

async def test_nan_prints_the_same_on_every_platform() -> None:
    run = hostile_run()
    assert await run.driver.run(workflow_main(run.sandbox, """
        local nan = 0/0
        return tostring(nan), tostring(-nan), string.format('%s|%f|%.2g|%5.1f', nan, -nan, nan, nan)
    """)) == ("nan", "nan", "nan|nan|nan|  nan")


LOCALE_SCRIPT = """
import asyncio, locale, threading
from runner.sandbox.runtime import LuaSandbox
from tests.runner.sandbox.test_trust_boundary import hostile_run
from tests.support.sandboxes import workflow_main

BODY = '''
    local t = {} for _, k in ipairs({'b', 'a', 'B', 'A', '_'}) do t[k] = true end
    local keys = {} for k in pairs(t) do keys[#keys + 1] = k end
    local sorted = {'b', 'a', 'B', 'A', '_'} table.sort(sorted)
    return tostring(1.5) .. ' ' .. (2.25 .. '') .. ' ' .. string.format('%.1f', 0.5) .. ' ' .. table.concat(keys)
        .. ' ' .. table.concat(sorted) .. ' ' .. os.date('!%A %B', 0) .. ' ' .. json.encode({1.5, 2.25}) .. ' '
        .. tostring(tonumber('1,5')) .. ' ' .. tostring('a' < 'B')
'''
# what any function.python handler may do to the whole process
locale.setlocale(locale.LC_ALL, "de_DE.UTF-8")
print(locale.localeconv()["decimal_point"])
box = LuaSandbox(seed=1)    # unpinned: the hazard is real in this process
box.add_module("json")
box.begin_task()
print(box.resume(box.start(box.entrypoint("return {main = function() " + BODY + " end}", "x.lua", "main")))[1][0])

def pinned():
    run = hostile_run()
    print(asyncio.run(run.driver.run(workflow_main(run.sandbox, BODY)))[0])

worker = threading.Thread(target=pinned)   # a workflow task runs on some thread of the worker
worker.start()
worker.join()
"""


def test_lua_runs_in_the_c_locale_whatever_the_process_locale(tmp_path: Path) -> None:
    # a de_DE locale (decimal comma) compiled for this test, so it needs no system locale installed
    built = subprocess.run(["localedef", "-i", "de_DE", "-f", "UTF-8", str(tmp_path / "de_DE.UTF-8")],
                           capture_output=True, text=True)
    assert (tmp_path / "de_DE.UTF-8").is_dir(), built.stderr
    done = subprocess.run([sys.executable, "-c", LOCALE_SCRIPT], capture_output=True, text=True, timeout=60,
                          cwd=REPO, env={**os.environ, "LOCPATH": str(tmp_path)})
    comma, unpinned, pinned = done.stdout.splitlines()
    assert comma == ",", "the process runs in de_DE"
    assert unpinned.startswith("1,5 "), "without the pin Lua would print the decimal comma"
    assert pinned == "1.5 2.25 0.5 AB_ab AB_ab Thursday January [1.5,2.25] nil false"


# ---------------------------------------------------------------------- one worker, a hostile run, a bystander

@pytest.mark.slow
async def test_a_hostile_workflow_cannot_stall_a_bystander_on_the_same_worker(tmp_path: Path,
                                                                              dev_server: Any) -> None:
    project = tmp_path / "project"
    shutil.copytree(ENTRIES / "trust_boundary", project / "entries")
    queue = f"trust-{uuid.uuid4().hex[:8]}"
    yaml_file = project / "entries" / "app.yaml"
    yaml_file.write_text(yaml_file.read_text().replace("trust-queue", queue))
    env = {**os.environ, "TEMPORAL_ADDRESS": dev_server.address, "FLOWCTL_REGISTRY": str(project / "registry.db"),
           "PYTHONPATH": str(REPO)}
    applied = subprocess.run([sys.executable, "-m", "cli", "apply"], cwd=project, env=env, capture_output=True,
                             text=True, timeout=120)
    assert applied.returncode == 0, applied.stderr
    # one worker process: the old bug froze all of it, with the GIL held
    worker = subprocess.Popen([sys.executable, "-m", "cli", "worker"], cwd=project, env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = await dev_server.client()
        with open_store(env["FLOWCTL_REGISTRY"], create=False) as store:
            source = StoreRevisionSource(store)
            bystander = await start_workflow(client, source, "trust:bystander", {"rounds": 10})
            hostile = {attempt: await start_workflow(client, source, "trust:hostile", {"attempt": attempt})
                       for attempt in ("unlink", "listen", "on_query", "duration")}
        async with asyncio.timeout(240):  # a frozen worker never answers; a busy machine is slow
            assert await bystander.handle.result() == {"done": True}, "the bystander completes"
            results = {attempt: await started.handle.result() for attempt, started in hostile.items()
                       if attempt != "duration"}
            with pytest.raises(WorkflowFailureError) as failed:
                await hostile["duration"].handle.result()
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)  # the worker and the serving process it supervises
            worker.wait()
    assert results == {
        "unlink": {"ok": False, "error": "hostile.lua:11: process.unlink: this pid was changed (its id is a table, "
                                         "not a workflow id string); use the pid process.self() or spawn returned"},
        "listen": {"ok": False, "error": "hostile.lua:16: process.listen: topic must be a non-empty string"},
        "on_query": {"ok": False, "error": "hostile.lua:20: workflow.on_query: expected a name and a function"},
    }
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "INVALID" and cause.non_retryable
    assert cause.message == ("result.d: a flowctl.Duration whose ns was changed (it is a table, not an integer) "
                             "cannot be sent")


async def test_a_value_whose_eq_says_yes_is_not_taken_for_a_command() -> None:
    """A user coroutine yields a table whose ``__eq`` claims to be flowctl's command marker: it stays a value."""
    body = ("local forged = setmetatable({}, {__eq = function() return true end})\n"
            "local co = coroutine.create(function() coroutine.yield(forged, {op = 'time.sleep', ns = 1}) "
            "return 'done' end)\n"
            "local ok, got, cmd = coroutine.resume(co)\n"
            "return ok, rawequal(got, forged), type(cmd), coroutine.resume(co)")
    assert await run_main(hostile_run(), body) == (True, True, "table", True, "done")


def test_the_pinned_locale_keeps_python_on_the_thread_decoding_utf8() -> None:
    """Lua's categories are C, but Python code on a thread that ran Lua (text files, subprocess output of
    ``flowctl test``, a ``function.python`` handler) still decodes UTF-8 where the process did."""
    import locale
    import threading

    from runner.sandbox.c_locale import pin_c_locale

    seen: list[str] = []

    def on_a_lua_thread() -> None:
        pin_c_locale()
        seen.append(locale.getpreferredencoding(False))

    before = locale.getpreferredencoding(False)
    thread = threading.Thread(target=on_a_lua_thread)
    thread.start()
    thread.join()
    assert seen == [before] if before == "UTF-8" else seen != []

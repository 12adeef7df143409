"""Real Lua for unit tests of the driver, channels and shims, without a Temporal server.

``command_sandbox()`` is a fresh :class:`LuaSandbox` (with ``coroutine.spawn``) whose ``cmd``
module hands raw command tables to the driver, the way every shim does;
``await drive(body, handlers)`` runs ``body`` as a workflow's ``main`` (its first line is
line 2 of ``wf.lua``) under a :class:`WorkflowDriver` and returns what it returned.
``shim_run(modules)`` is a workflow run with the listed modules installed as a worker
installs them; commands whose Python half needs a real workflow (timers, activities,
``workflow.*`` calls into temporalio) cannot be answered there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from registry.revision import Revision
from runner.revision_source import ProjectRevisionSource, RevisionSource
from runner.sandbox.driver import Handler, WorkflowDriver
from runner.sandbox.runtime import WORKFLOW_LIMITS, LuaSandbox, SandboxLimits
from runner.shims.process import ProcessState
from runner.shims.run_context import WorkflowRun
from runner.shims.workflow_modules import install_workflow_modules

#: the workflow clock the sandboxes start with: 2023-11-14T22:13:20Z
CLOCK_NS = 1_700_000_000 * 10**9

#: loaded like a shim: ``yield_command`` arrives as an argument and never becomes a global
COMMAND_MODULE = """
return function(yield_command)
    local M = {}
    -- cmd.call{op = ...}: the reply's values; a refused command is an error at the caller's line
    function M.call(command)
        local reply = table.pack(yield_command(command))
        if not reply[1] then error(reply[2], 2) end
        return table.unpack(reply, 2, reply.n)
    end
    -- cmd.raw{op = ...}: the reply as the driver sent it, status first
    function M.raw(command)
        return yield_command(command)
    end
    return M
end
"""


def command_sandbox(*, limits: SandboxLimits = WORKFLOW_LIMITS, seed: int = 7) -> LuaSandbox:
    """A fresh sandbox with the ``cmd`` module (a global too) and ``coroutine.spawn``."""
    sandbox = LuaSandbox(seed=seed, limits=limits, spawn=True, clock_ns=lambda: CLOCK_NS, owner="wf.lua")
    sandbox.add_module("cmd", sandbox.load(COMMAND_MODULE, "=cmd")(sandbox.yield_command))
    return sandbox


def workflow_main(sandbox: LuaSandbox, body: str) -> Any:
    """``body`` as the ``main`` of a chunk named ``wf.lua``; its first line is line 2."""
    return sandbox.entrypoint("return {main = function(...)\n" + body + "\nend}", "wf.lua", "main")


async def drive(body: str, handlers: Mapping[str, Handler] | None = None, *args: Any,
                sandbox: LuaSandbox | None = None) -> tuple[Any, ...]:
    """Run ``body`` as a workflow's main under a WorkflowDriver; its return values."""
    sandbox = sandbox or command_sandbox()
    driver = WorkflowDriver(sandbox, handlers or {})
    return await driver.run(workflow_main(sandbox, body), *args)


def shim_run(modules: Iterable[str], *, context: Mapping[str, Any] | None = None,
             source: RevisionSource | None = None, entry_id: str = "app:wf") -> WorkflowRun:
    """A workflow run of ``entry_id`` with ``modules`` installed (print and log always are)."""
    sandbox = command_sandbox()
    driver = WorkflowDriver(sandbox, {})
    listed = list(modules)
    revision = Revision(entry_id=entry_id, kind="workflow.lua", digest="0" * 64, data={"modules": listed},
                        source=None, source_name=None)
    run = WorkflowRun(sandbox=sandbox, driver=driver, revision=revision,
                      source=source or ProjectRevisionSource({}), context=dict(context or {}))
    driver.handlers.update(install_workflow_modules(run, listed))
    return run


async def run_main(run: WorkflowRun, body: str, *args: Any) -> tuple[Any, ...]:
    """Run ``body`` as the run's ``main`` (first line = line 2 of ``wf.lua``); its return values."""
    return await run.driver.run(workflow_main(run.sandbox, body), *args)


async def lua_error(run: WorkflowRun, statement: str) -> str:
    """The error ``statement`` raises, run at line 3 of ``wf.lua`` (so the message says ``wf.lua:3:``)."""
    ok, err = await run_main(run, f"return pcall(function()\n{statement}\nend)")
    assert ok is False, f"{statement!r} did not fail"
    assert isinstance(err, str), f"{statement!r} raised an error object, not a message"
    return err


def process_run(modules: Iterable[str], *, limits: SandboxLimits = WORKFLOW_LIMITS) -> WorkflowRun:
    """A workflow run of ``app:wf`` with ``modules`` installed and its process state (mailbox, listeners)."""
    sandbox = command_sandbox(limits=limits)
    driver = WorkflowDriver(sandbox, {})
    listed = list(modules)
    revision = Revision(entry_id="app:wf", kind="workflow.lua", digest="0" * 64, data={"modules": listed},
                        source=None, source_name=None)
    run = WorkflowRun(sandbox=sandbox, driver=driver, revision=revision, source=ProjectRevisionSource({}))
    run.process = ProcessState(run, [])
    driver.handlers.update(install_workflow_modules(run, listed))
    return run

"""Install the Lua modules a workflow entry lists (``modules:``) into its run's sandbox.

A listed module is reachable both as ``require("name")`` and as a global of that
name (SPEC §5.4); an unlisted one is neither. ``print`` and ``log`` are always there:
logging is not a capability, and the lines never reach the workflow's history.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from runner.sandbox.driver import Handler
from runner.shims import channel, crypto, ctx, funcs, log, process, process_lua, uuid, workflow
from runner.shims import time as time_shim
from runner.shims.run_context import WorkflowRun

__all__ = ["SHIM_MODULES", "ShimModule", "install_workflow_modules", "load_shim"]


@dataclass(frozen=True)
class ShimModule:
    """A workflow module: its Lua half and the command handlers of its Python half."""

    lua_source: str
    handlers: Callable[[WorkflowRun], dict[str, Handler]]


#: Lua module name -> its shim (json and errors come from the sandbox; channel is always loaded).
SHIM_MODULES: dict[str, ShimModule] = {
    "funcs": ShimModule(funcs.LUA_SOURCE, funcs.handlers),
    "time": ShimModule(time_shim.LUA_SOURCE, time_shim.handlers),
    "uuid": ShimModule(uuid.LUA_SOURCE, uuid.handlers),
    "crypto": ShimModule(crypto.LUA_SOURCE, crypto.handlers),
    "workflow": ShimModule(workflow.LUA_SOURCE, workflow.handlers),
    "ctx": ShimModule(ctx.LUA_SOURCE, ctx.handlers),
    "process": ShimModule(process_lua.LUA_SOURCE, process.handlers),
}

def load_shim(sandbox: Any, source: str, chunkname: str, *extra: Any) -> Any:
    """Run a shim chunk (``local yield_command, ... = ...``) and return what it returns.

    The chunk is wrapped in a function so ``yield_command`` arrives as an argument and
    never becomes a global that user code could reach; the wrapper adds nothing before
    the first line, so line numbers in shim errors stay true.
    """
    factory = sandbox.load("return function(...) " + source + "\nend", chunkname)
    return factory(sandbox.yield_command, *extra)


#: Modules the sandbox itself provides (runner/sandbox/lua/prelude.lua).
BUILTIN_MODULES = frozenset({"json", "errors"})


def install_log(sandbox: Any) -> None:
    """``print`` and the ``log`` module: always there (logging is not a capability)."""
    log_module, print_function = load_shim(sandbox, log.LUA_SOURCE, "=log", sandbox.where, sandbox.tostring)
    sandbox.add_module("log", log_module)
    sandbox.env.print = print_function


def install_workflow_modules(run: WorkflowRun, modules: Iterable[str]) -> dict[str, Handler]:
    """Add the listed modules (plus print/log) to the run's sandbox; return their command handlers."""
    sandbox = run.sandbox
    listed = sorted(set(modules))
    sandbox.configure(run.revision.entry_id, ", ".join(listed))
    # The channel kernel is always there: time.after and process.* hand out its channels.
    channel_module, kernel = load_shim(sandbox, channel.LUA_SOURCE, "=channel")
    # process handlers answer workflow.exec too, so they are there whatever is listed.
    handlers: dict[str, Handler] = dict(process.handlers(run))
    for name in listed:
        if name in BUILTIN_MODULES:
            sandbox.add_module(name)
            continue
        if name == "channel":
            sandbox.add_module(name, channel_module)
            continue
        shim = SHIM_MODULES.get(name)
        if shim is None:
            continue  # validation reports unknown module names
        sandbox.add_module(name, load_shim(sandbox, shim.lua_source, f"={name}", kernel))
        handlers.update(shim.handlers(run))
    install_log(sandbox)
    handlers.update(log.handlers(run))
    return handlers

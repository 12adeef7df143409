"""Install the Lua modules a workflow entry lists (``modules:``) into its run's sandbox.

A listed module is reachable both as ``require("name")`` and as a global of that
name (docs/lua-api.md); an unlisted one is neither. ``print`` and ``log`` are always there:
logging is not a capability, and the lines never reach the workflow's history.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from runner.sandbox.driver import Handler
from runner.sandbox.runtime import LuaSandbox, lua_file
from runner.shims import crypto, ctx, funcs, log, process, uuid, workflow
from runner.shims import time as time_shim
from runner.shims.run_context import WorkflowRun

__all__ = ["SHIM_MODULES", "install_workflow_modules", "load_shim"]


#: Lua module name -> the command handlers of its Python half; its Lua half is ``<name>.lua``
#: beside it (json and errors come from the sandbox; channel is always loaded).
SHIM_MODULES: dict[str, Callable[[WorkflowRun], dict[str, Handler]]] = {
    "funcs": funcs.handlers,
    "time": time_shim.handlers,
    "uuid": uuid.handlers,
    "crypto": crypto.handlers,
    "workflow": workflow.handlers,
    "ctx": ctx.handlers,
    "process": process.handlers,
}


def load_shim(sandbox: LuaSandbox, name: str, *extra: Any, package: str = "runner.shims") -> Any:
    """Run the Lua half ``<name>.lua`` of a shim in ``package``; what it returns.

    The chunk receives the sandbox's shim kit (runner/sandbox/lua/80_shim_kit.lua: the one
    ``call`` helper, object types...), then ``extra``; as arguments, never as globals user
    code could reach. Compiled once per process, like all of flowctl's own Lua.
    """
    return sandbox.load(lua_file(package, f"{name}.lua"), f"={name}", sandbox.kit, *extra)


#: Modules the sandbox itself provides (runner/sandbox/lua/70_modules.lua).
BUILTIN_MODULES = frozenset({"json", "errors"})


def install_log(sandbox: LuaSandbox) -> None:
    """``print`` and the ``log`` module: always there (logging is not a capability)."""
    log_module, print_function = load_shim(sandbox, "log")
    sandbox.add_module("log", log_module)
    sandbox.env.print = print_function


def install_workflow_modules(run: WorkflowRun, modules: Iterable[str]) -> dict[str, Handler]:
    """Add the listed modules (plus print/log) to the run's sandbox; return their command handlers."""
    sandbox = run.sandbox
    listed = sorted(set(modules))
    sandbox.configure(run.revision.entry_id, ", ".join(listed))
    # The channel kernel is always there: time.after and process.* hand out its channels.
    channel_module, kernel = load_shim(sandbox, "channel")
    # process handlers answer workflow.exec too, so they are there whatever is listed.
    handlers: dict[str, Handler] = dict(process.handlers(run))
    for name in listed:
        if name in BUILTIN_MODULES:
            sandbox.add_module(name)
            continue
        if name == "channel":
            sandbox.add_module(name, channel_module)
            continue
        shim_handlers = SHIM_MODULES.get(name)
        if shim_handlers is None:
            continue  # validation reports unknown module names
        sandbox.add_module(name, load_shim(sandbox, name, kernel))
        handlers.update(shim_handlers(run))
    install_log(sandbox)
    handlers.update(log.handlers(run))
    return handlers

"""The ``funcs`` module in workflows: call activities (function.lua / function.python entries).

``funcs.call(id, ...)`` runs the activity whose type is the entry ID ``id`` on the task
queue of that entry's worker, with the entry's options, and returns ``result, err``;
``funcs.new():with_options({...})`` builds an executor whose options (``activity.*``
keys) are merged over the entry's; ``funcs.async`` starts the activity and returns a
future whose ``:result()`` waits for it.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

from registry.errors import FlowError
from registry.revision import Revision
from runner.sandbox.driver import Blocking, Handler, Reply, ShimError
from runner.sandbox.failures import FlowFailure
from runner.sandbox.values import lua_args, lua_options
from runner.shims.run_context import WorkflowRun
from runner.temporal.failures import failure_from_temporal
from runner.temporal.options import activity_options

LUA_SOURCE = r"""
local yield_command = ...
local M = {}

local Executor = {__name = "flowctl.Executor"}
Executor.__index = Executor

local function executor(options)
    return setmetatable({options = options}, Executor)
end

local function check_id(id, what)
    if type(id) ~= "string" then
        error(what .. ": the first argument must be an activity entry ID like \"app:charge_payment\", got "
            .. type(id), 3)
    end
end

-- Durations (5 * time.SECOND) become milliseconds, so options cross to Python as plain data.
local function plain(v)
    local mt = getmetatable(v)
    if type(mt) == "table" and mt.__name == "flowctl.Duration" then
        return v.ns // 1000000
    elseif type(v) == "table" then
        local copy = {}
        for k, item in pairs(v) do copy[k] = plain(item) end
        return copy
    end
    return v
end

function Executor:with_options(options)
    if type(options) ~= "table" then
        error("with_options: expected a table of activity.* options, got " .. type(options), 2)
    end
    local merged = {}
    for k, v in pairs(self.options) do merged[k] = v end
    for k, v in pairs(options) do merged[k] = plain(v) end
    return executor(merged)
end

function Executor:call(id, ...)
    check_id(id, "funcs.call")
    local ok, result, err = yield_command({op = "funcs.call", id = id, args = table.pack(...),
                                           options = self.options})
    if not ok then error(result, 2) end
    return result, err
end

local Future = {__name = "flowctl.Future"}
Future.__index = Future

function Future:result()
    if not self.done then
        local ok, result, err = yield_command({op = "await", handle = self.handle})
        if not ok then error(result, 2) end
        self.done, self.value, self.err = true, result, err
    end
    return self.value, self.err
end

function Future:is_done()
    return self.done
end

function Executor:async(id, ...)
    check_id(id, "funcs.async")
    local ok, handle = yield_command({op = "funcs.start", id = id, args = table.pack(...),
                                      options = self.options})
    if not ok then error(handle, 2) end
    return setmetatable({handle = handle, done = false}, Future)
end

local default = executor({})

function M.new()
    return executor({})
end

-- Tail calls: errors raised at level 2 inside the executor still point at the user's line.
function M.call(id, ...)
    return default:call(id, ...)
end

function M.async(id, ...)
    return default:async(id, ...)
end

return M
"""


def handlers(run: WorkflowRun) -> dict[str, Handler]:
    """Command handlers for the funcs module, bound to one workflow run."""

    def call(cmd: Any) -> Reply | Blocking:
        started = _prepare(run, cmd, "funcs.call")
        if isinstance(started, tuple):
            return started  # resolved at once: (nil, err)
        return Blocking(started)

    def start(cmd: Any) -> Reply:
        started = _prepare(run, cmd, "funcs.async")
        if isinstance(started, tuple):
            return (run.driver.start_operation(_already(started)),)
        return (run.driver.start_operation(started),)

    return {"funcs.call": call, "funcs.start": start}


def _prepare(run: WorkflowRun, cmd: Any, what: str) -> Any:
    """Read the command now (Lua may change its tables later); return the work or an error reply."""
    activity_id = cmd["id"]
    args = lua_args(run.sandbox, cmd["args"], f"{what}({activity_id!r}) argument")
    overrides = lua_options(run.sandbox, cmd["options"], f"{what}({activity_id!r}) options")
    try:
        revision = run.source.activity(activity_id)
        options = activity_options(revision, overrides, task_queue=_task_queue(run, revision))
    except FlowFailure as failure:
        return (None, run.sandbox.error_object(failure))
    except FlowError as exc:
        raise ShimError(f"{what}({activity_id!r}): {exc.message}" + (f" ({exc.hint})" if exc.hint else "")) \
            from None
    return _execute(run, activity_id, args, options)


async def _execute(run: WorkflowRun, activity_id: str, args: list[Any], options: dict[str, Any]) -> Reply:
    try:
        result = await workflow.execute_activity(activity_id, args=args, **options)
    except ActivityError as exc:
        return (None, run.sandbox.error_object(failure_from_temporal(exc)))
    return (run.sandbox.import_(result, f"{activity_id} result"),)


async def _already(reply: Reply) -> Reply:
    return reply


def _task_queue(run: WorkflowRun, activity: Revision) -> str:
    """The task queue of the activity entry's worker (its ``task_queue``, else the worker's entry ID)."""
    worker_id = activity.worker_id
    if worker_id is None:
        return workflow.info().task_queue  # validate requires a worker; be lenient at run time
    try:
        return run.source.entry(worker_id).task_queue
    except FlowFailure:
        return worker_id

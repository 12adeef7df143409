"""The ``funcs`` module in workflows: call activities (function.lua / function.python entries).

``funcs.call(id, ...)`` runs the activity whose type is the entry ID ``id`` (a bare name means
the calling workflow's namespace: registry.entry_refs.qualify, the rule the lint uses) on the task
queue of that entry's worker, with the entry's options, and returns ``result, err``;
``funcs.new():with_options({...})`` builds an executor whose options (``activity.*``
keys) are merged over the entry's; ``funcs.async`` starts the activity and returns a
future whose ``:result()`` waits for it. Each call counts as a command of the workflow task that
starts it, with its arguments' bytes (docs/sandbox.md, Quotas).
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

from registry.errors import FlowError
from registry.revision import Revision
from runner.sandbox.driver import Blocking, Handler, Reply, ShimError
from runner.sandbox.failures import FlowFailure
from runner.sandbox.values import lua_args_sized, lua_field, lua_options, text
from runner.shims.run_context import WorkflowRun
from runner.temporal.failures import failure_from_temporal
from runner.temporal.options import activity_options


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
    written = text(cmd, "id", f"{what}: the activity entry ID")
    activity_id = run.revision.ref(written)  # a bare name means the calling entry's namespace, as the lint reads it
    args, size = lua_args_sized(run.sandbox, lua_field(cmd, "args", what), f"{what}({activity_id!r}) argument")
    options = lua_field(cmd, "options", what)
    overrides = lua_options(run.sandbox, options, f"{what}({activity_id!r}) options")
    try:
        revision = run.source.activity(activity_id)
        options = activity_options(revision, overrides, task_queue=_task_queue(run, revision))
    except FlowFailure as failure:
        return (None, run.sandbox.error_object(failure))
    except FlowError as exc:
        raise ShimError(f"{what}({activity_id!r}): {exc.message}" + (f" ({exc.hint})" if exc.hint else "")) \
            from None
    run.driver.command(f"{what}({activity_id!r})", size)
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

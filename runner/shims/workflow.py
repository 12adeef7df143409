"""The ``workflow`` module: run info, versioning (Temporal patches), search attributes and memo.

``workflow.version(change_id, min, max)`` maps onto Temporal patch markers named
``change_id@vN``. A new run records ``max``. A run replaying history takes the version
whose marker it recorded, or ``min`` when it recorded none (it ran before the change
existed). While replaying, markers a little above ``max`` or below ``min`` are looked
for too: finding one means this code no longer supports a version the run already
took, and the workflow task fails with a message saying which — Temporal retries the
task, so deploying code that supports that version again un-sticks the run. One change
id gets one answer for the whole run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeKey, SearchAttributeUpdate

from runner.sandbox.driver import Handler, Reply, ShimError, read_only
from runner.sandbox.values import integer, lua_args, lua_field, lua_function, lua_value, text
from runner.shims.run_context import WorkflowRun
from runner.temporal.memo import CARRIED_ARG, CONTEXT_MEMO, reserved_refusal

#: How far outside [min, max] a replay looks for a recorded version (markers are cheap to probe).
VERSION_PROBE = 8
#: The most versions one ``workflow.version`` call may span: finding the recorded one probes each.
MAX_VERSION_SPAN = 1000


def handlers(run: WorkflowRun) -> dict[str, Handler]:
    """Command handlers for the workflow module, bound to one workflow run."""

    @read_only
    def info(_cmd: Any) -> Reply:
        current = workflow.info()
        data = {
            "workflow_id": current.workflow_id,
            "run_id": current.run_id,
            "workflow_type": current.workflow_type,
            "task_queue": current.task_queue,
            "namespace": current.namespace,
            "attempt": current.attempt,
            "history_length": current.get_current_history_length(),
            "history_size": current.get_current_history_size(),
            "start_time": _rfc3339(current.workflow_start_time),
            "first_execution_run_id": current.first_execution_run_id,
            "continued_run_id": current.continued_run_id,
            "parent_workflow_id": current.parent.workflow_id if current.parent else None,
            "entry_id": run.revision.entry_id,
            "revision": run.revision.digest,
        }
        return (run.sandbox.import_({k: v for k, v in data.items() if v is not None}, "workflow.info()"),)

    def version(cmd: Any) -> Reply:
        what = "workflow.version"
        change_id = text(cmd, "change_id", f"{what}: change_id", empty=False)
        low, high = integer(cmd, "min", f"{what}: min_supported"), integer(cmd, "max", f"{what}: max_supported")
        return (workflow_version(run, change_id, low, high),)

    def attrs(cmd: Any) -> Reply:
        search = lua_value(run.sandbox, lua_field(cmd, "search", "workflow.attrs"), "workflow.attrs search")
        memo = lua_value(run.sandbox, lua_field(cmd, "memo", "workflow.attrs"), "workflow.attrs memo")
        if search is not None:
            workflow.upsert_search_attributes(_search_updates(search))
        if memo is not None:
            if not isinstance(memo, dict):
                raise ShimError("workflow.attrs: memo must be a table of name = value")
            refusal = reserved_refusal(memo)
            if refusal is not None:
                raise ShimError(f"workflow.attrs: {refusal}")
            workflow.upsert_memo(memo)
        return ()

    @read_only
    def history_length(_cmd: Any) -> Reply:
        return (workflow.info().get_current_history_length(),)

    @read_only
    def history_size(_cmd: Any) -> Reply:
        return (workflow.info().get_current_history_size(),)

    def continue_as_new(cmd: Any) -> Reply:
        args = lua_args(run.sandbox, lua_field(cmd, "args", "workflow.continue_as_new"),
                        "workflow.continue_as_new input")
        carried = run.process.unconsumed()
        if carried:
            args.append({CARRIED_ARG: carried})
        # The memo is always given (an empty one would make Temporal copy this run's, with its
        # start messages and revision). No revision in it: the next run pins itself to the
        # current revision, so continue-as-new is where a long-lived workflow picks up new code.
        workflow.continue_as_new(args=args, memo={CONTEXT_MEMO: dict(run.context)})  # raises

    def on_query(cmd: Any) -> Reply:
        what = "workflow.on_query"
        run.queries[text(cmd, "name", f"{what}: the name")] = lua_function(cmd, "fn", f"{what}: the handler")
        return ()

    def on_update(cmd: Any) -> Reply:
        what = "workflow.on_update"
        name = text(cmd, "name", f"{what}: the name")
        run.updates[name] = (lua_function(cmd, "fn", f"{what}: the handler"),
                             lua_function(cmd, "validator", f"{what}: the validator", optional=True))
        return ()

    return {
        "workflow.continue_as_new": continue_as_new,
        "workflow.on_query": on_query,
        "workflow.on_update": on_update,
        "workflow.info": info,
        "workflow.version": version,
        "workflow.attrs": attrs,
        "workflow.history_length": history_length,
        "workflow.history_size": history_size,
    }


class UnsupportedVersion(RuntimeError):
    """The run recorded a version this code no longer supports: fails the workflow task (retried)."""


def workflow_version(run: WorkflowRun, change_id: str, low: int, high: int) -> int:
    """The version of ``change_id`` for this run (see the module docstring)."""
    recorded = run.versions.get(change_id)
    if recorded is None:
        if high - low > MAX_VERSION_SPAN:
            raise ShimError(f"workflow.version({change_id!r}, {low}, {high}): max - min may be at most "
                            f"{MAX_VERSION_SPAN} (a change id has few versions; start a new change id instead)")
        recorded = _recorded_version(change_id, low, high)
        run.versions[change_id] = recorded
    if not low <= recorded <= high:
        raise UnsupportedVersion(
            f"workflow.version({change_id!r}, {low}, {high}): this run already took version {recorded}, "
            f"which the code no longer supports. Deploy code whose range includes {recorded} (keep that "
            f"branch until `flowctl versions` shows no open run on it), or reset/terminate the run."
        )
    return recorded


def _recorded_version(change_id: str, low: int, high: int) -> int:
    replaying = workflow.unsafe.is_replaying()
    # Only a replay may probe versions above max: outside replay, patched() records a marker.
    top = high + VERSION_PROBE if replaying else high
    for candidate in range(top, low, -1):
        if workflow.patched(_marker(change_id, candidate)):
            return candidate
    if replaying:
        for candidate in range(low - 1, low - 1 - VERSION_PROBE, -1):
            if workflow.patched(_marker(change_id, candidate)):
                return candidate
    return low


def _marker(change_id: str, version: int) -> str:
    return f"{change_id}@v{version}"


def _search_updates(search: Any) -> list[SearchAttributeUpdate[Any]]:
    """Typed search attributes from a Lua table; the Lua value's type picks the attribute type."""
    if not isinstance(search, dict):
        raise ShimError("workflow.attrs: search must be a table of name = value")
    updates: list[SearchAttributeUpdate[Any]] = []
    for name, value in sorted(search.items()):
        key: SearchAttributeKey[Any]
        if isinstance(value, bool):
            key = SearchAttributeKey.for_bool(name)
        elif isinstance(value, int):
            key = SearchAttributeKey.for_int(name)
        elif isinstance(value, float):
            key = SearchAttributeKey.for_float(name)
        elif isinstance(value, str):
            key = SearchAttributeKey.for_keyword(name)
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            key = SearchAttributeKey.for_keyword_list(name)
        else:
            raise ShimError(f"workflow.attrs: search attribute {name!r} must be a string, number, boolean "
                            f"or list of strings, got {type(value).__name__}")
        updates.append(key.value_set(value))
    return updates


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")

"""The one dynamic Temporal workflow that runs every ``workflow.lua`` entry.

LUA_WORKFLOW_RUNNER_NOTE — why this workflow class is *unsandboxed*:
temporalio normally re-imports workflow code inside a Python sandbox that restricts
modules and proxies non-deterministic calls. lupa (a C extension holding a Lua
interpreter) does not survive that sandbox, and the sandbox would add nothing here:
the code that must be deterministic is Lua, and the Lua sandbox
(runner.sandbox.runtime) is what makes it so — sorted ``pairs``, seeded ``math.random``,
``os.time`` from workflow time, no I/O, no Python objects. The Python code in this
module and in runner/shims only calls temporalio's deterministic workflow APIs
(workflow.now/random/uuid4/patched/sleep/execute_activity). Hence
``@workflow.defn(dynamic=True, sandboxed=False)``, and workers register it with
``UnsandboxedWorkflowRunner``.

How a run ends:
- an input the entry's ``input_schema`` refuses → the workflow fails before any Lua runs, non-retryable
  ``INVALID_INPUT`` naming the JSON path and the schema rule (registry.contracts);
- ``return value`` → the workflow completes with ``value`` (runner.sandbox.values mapping), or fails
  non-retryable ``INVALID_OUTPUT`` when its ``output_schema`` refuses ``value``;
- ``return nil, err`` → the workflow fails with an ApplicationError whose type is
  ``err:kind()`` (non-retryable when the error says so); a string ``err`` is kind INTERNAL;
- ``error(errors.new{...})`` → the same as returning that error: the error object shows
  it was raised on purpose;
- a sandbox limit (memory, instructions, stack) or a quota (docs/sandbox.md, Quotas) → the
  workflow fails, non-retryable ``LIMIT_EXCEEDED`` naming the limit and the Lua file:line:
  retrying the same code on the same history would hit it again (a run's limits are the
  worker's, narrowed by the ``limits:`` of its worker entry and of its own entry; error texts
  sent to Temporal are cut to ``error_bytes``);
- any other Lua error (``error("...")``, ``attempt to index a nil value``…) → the
  *workflow task* fails, like an exception in a Temporal workflow written in Python or
  Go: Temporal retries the task (with backoff) and the run resumes from its history once
  it gets fixed code: on ``auto_upgrade`` workers a newly applied revision, on ``pinned``
  ones only after ``flowctl upgrade`` moved the run (``_pinned_revision``) — or an operator
  resets or terminates it. The Lua message and traceback are in the task failure (describe).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError

from registry.revision import Revision
from runner.history import INTERNAL_PATCH_PREFIX
from runner.revision_source import RevisionSource, imported_libraries
from runner.sandbox.driver import WorkflowDriver
from runner.sandbox.failures import FlowFailure, LimitExceeded, LuaRuntimeError
from runner.sandbox.quotas import (
    LimitExceedsWorker,
    QuotaExceeded,
    bounded_failure,
    check_payload,
    entry_limits,
    truncated,
)
from runner.sandbox.runtime import WORKFLOW_LIMITS, LuaSandbox, SandboxLimits
from runner.shims.process import ProcessState
from runner.shims.run_context import WorkflowRun
from runner.shims.workflow_modules import install_workflow_modules
from runner.temporal.failures import contract_failure, to_application_error
from runner.temporal.memo import CARRIED_ARG, CONTEXT_MEMO, MESSAGES_MEMO, REVISION_MEMO
from runner.temporal.metrics import limit_hit, lua_task_cpu
from runner.temporal.watchdog import quarantine_due, quarantine_failure, stall_for_tests

__all__ = ["LUA_WORKFLOW_RUNNER_NOTE", "REVISION_MEMO", "make_workflow_class"]

LUA_WORKFLOW_RUNNER_NOTE = __doc__


class LuaWorkflowError(Exception):
    """A Lua error that fails the workflow *task* (Temporal retries it), with the Lua traceback."""


def make_workflow_class(source: RevisionSource, *, follow_pins: bool = True,
                        limits: SandboxLimits = WORKFLOW_LIMITS,
                        on_run: Callable[[WorkflowRun], None] | None = None,
                        record_pin: bool | None = None) -> type:
    """A dynamic, unsandboxed workflow class serving every workflow.lua entry of ``source``.

    ``limits`` bound each run's sandbox (memory, instructions per workflow task).
    With ``follow_pins=False`` every run uses the current revision of its type, whatever
    its memo says (``flowctl replay`` checks a new revision against old histories).
    ``on_run`` sees each run before its Lua starts (``flowctl replay`` records its commands);
    ``record_pin`` overrides whether a run started without the revision memo upserts it.
    """

    async def run(self, args: Sequence[RawValue]) -> Any:
        _quarantine_check(source)
        revision = _pinned_revision(source, follow_pins, record_pin)
        try:
            run_limits = entry_limits(limits, revision, source.entry)
        except LimitExceedsWorker as exc:  # the entry asks more than this worker allows: say so, fail the run
            workflow.logger.error(exc.message, extra={"entry_id": revision.entry_id})
            raise to_application_error(exc) from None
        sandbox = LuaSandbox(seed=workflow.random().getrandbits(63), clock_ns=workflow.time_ns,
                             spawn=True, owner=revision.entry_id, limits=run_limits)
        driver = WorkflowDriver(sandbox, {})
        driver.task_id = workflow.info().get_current_history_length  # the budget is per workflow task
        driver.before_task.append(functools.partial(_quarantine_check, source))  # first: nothing else runs
        driver.before_task.append(functools.partial(_upgrade_check if not follow_pins else _moved_check,
                                                    source, revision))
        driver.after_task.append(lua_task_cpu(revision.entry_id))
        run = WorkflowRun(sandbox=sandbox, driver=driver, revision=revision, source=source,
                          context=_memo_dict(CONTEXT_MEMO))
        try:
            converter = workflow.payload_converter()
            values = [converter.from_payload(arg.payload) for arg in args]
            carried: list[Any] = []
            if values and isinstance(values[-1], dict) and set(values[-1]) == {CARRIED_ARG}:
                carried = list(values.pop()[CARRIED_ARG] or [])  # from workflow.continue_as_new
            enforced = _contracts_enforced(revision)
            refused = contract_failure(revision, "input_schema", values[0] if values else None) if enforced else None
            if refused is not None:  # before any Lua runs: a non-retryable INVALID_INPUT failure
                raise refused
            run.process = ProcessState(run, [*_memo_list(MESSAGES_MEMO), *carried, *self._early_signals])
            self._run = run
            driver.handlers.update(install_workflow_modules(run, _listed_modules(revision)))
            stall_for_tests(driver.handlers, revision.entry_id)
            if on_run is not None:
                on_run(run)
            main = _entrypoint(sandbox, revision)
            inputs = [sandbox.import_(value, f"input[{i + 1}]") for i, value in enumerate(values)]
            results = await driver.run(main, *inputs)
            value, failure = _outcome(sandbox, results, revision if enforced else None)
            if failure is None:
                return value
            if failure.kind == "CANCELED" and driver.cancel_requested:
                raise asyncio.CancelledError  # the run ends as Canceled, not Failed
            raise _sent(sandbox, failure)
        except LimitExceeded as exc:
            limit_hit(revision.entry_id, exc.limit, in_workflow=True)
            raise _sent(sandbox, exc) from None
        except LuaRuntimeError as exc:
            error = _runtime_error(sandbox, exc)
            if driver.cancel_requested and isinstance(error, ApplicationError) and error.type == "CANCELED":
                raise asyncio.CancelledError from None  # the CANCELED error went unhandled: the run is Canceled
            raise error from None
        except FlowFailure as failure:  # a value that cannot cross (input or result), a linked exit
            if failure.kind == "CANCELED" and driver.cancel_requested:
                raise asyncio.CancelledError from None  # the run ends as Canceled, not Failed
            raise _sent(sandbox, failure) from None

    async def on_signal(self, name: str, args: Sequence[RawValue]) -> None:
        """Every signal is a message: topic = signal name, payload = first argument (docs/lua-api.md)."""
        converter = workflow.payload_converter()
        values = [converter.from_payload(arg.payload) for arg in args]
        payload = values[0] if values else None
        extra = values[1] if len(values) > 1 else None
        sender = extra.get("from") if isinstance(extra, dict) and isinstance(extra.get("from"), str) else None
        if self._run is None:
            self._early_signals.append({"topic": name, "payload": payload, "from": sender})
        else:
            self._run.process.deliver(name, payload, sender)

    def on_query(self, name: str, args: Sequence[RawValue]) -> Any:
        run = self._require_run()
        _quarantine_check(source, always=True)
        handler = run.queries.get(name)
        if handler is None:
            known = ", ".join(sorted(run.queries)) or "none"
            raise ApplicationError(f"{run.revision.entry_id} has no query handler {name!r} (registered: {known})",
                                   type="NOT_FOUND", non_retryable=True)
        return _call_handler(run, handler, args, f"query {name!r}", wait=False)

    def validate_update(self, name: str, args: Sequence[RawValue]) -> None:
        if self._run is None:
            return  # it came with the run's first task, before Lua registered handlers: on_update checks it
        check_update(self, name, args)

    def check_update(self, name: str, args: Sequence[RawValue]) -> None:
        run = self._require_run()
        _quarantine_check(source, always=True)
        if name not in run.updates:
            known = ", ".join(sorted(run.updates)) or "none"
            raise ApplicationError(f"{run.revision.entry_id} has no update handler {name!r} (registered: {known})",
                                   type="NOT_FOUND", non_retryable=True)
        validator = run.updates[name][1]
        if validator is not None:
            _call_handler(run, validator, args, f"update {name!r} validator", wait=False, validating=True)

    async def on_update(self, name: str, args: Sequence[RawValue]) -> Any:
        if self._run is None:
            # Sent right after the start: wait for the Lua code to register its handlers, then
            # validate (a rejection now fails the update instead, with the same error).
            await workflow.wait_condition(lambda: self._run is not None)
            check_update(self, name, args)
        run = self._require_run()
        return await _call_update(run, run.updates[name][0], args, f"update {name!r}")

    def require_run(self) -> WorkflowRun:
        if self._run is None:
            raise ApplicationError("the workflow has not started its Lua code yet; retry shortly",
                                   type="UNAVAILABLE")
        return self._run

    # temporalio refuses @workflow.run on functions defined in a function because a *sandboxed*
    # workflow class must be importable by name; this class is unsandboxed and never re-imported,
    # and building it here lets each worker bind its own revision source and limits.
    run.__qualname__ = "LuaWorkflow.run"
    update = workflow.update(dynamic=True)(on_update)
    update.validator(validate_update)
    LuaWorkflow = type("LuaWorkflow", (), {
        "__doc__": "Runs one workflow.lua revision's ``main`` in a Lua sandbox, driven by WorkflowDriver.",
        "__module__": __name__,
        "__init__": _init_instance,
        "_require_run": require_run,
        "run": workflow.run(run),
        "on_signal": workflow.signal(dynamic=True)(on_signal),
        "on_query": workflow.query(dynamic=True)(on_query),
        "on_update": update,
    })
    LuaWorkflow.__qualname__ = "LuaWorkflow"
    workflow.defn(dynamic=True, sandboxed=False)(LuaWorkflow)
    return LuaWorkflow


def _init_instance(self: Any) -> None:
    self._run = None
    #: signals that arrived before the run's Lua code started (delivered first, in order)
    self._early_signals = []


def _memo_dict(key: str) -> dict[str, Any]:
    value = workflow.memo_value(key, None)
    return dict(value) if isinstance(value, dict) else {}


def _memo_list(key: str) -> list[dict[str, Any]]:
    value = workflow.memo_value(key, None)
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _call_handler(run: WorkflowRun, fn: Any, args: Sequence[RawValue], what: str, *, wait: bool,
                  validating: bool = False) -> Any:
    """Run a query handler or update validator now; Lua errors become the caller's error."""
    sandbox = run.sandbox
    converter = workflow.payload_converter()
    try:
        inputs = [sandbox.import_(converter.from_payload(arg.payload), f"{what} argument {i + 1}")
                  for i, arg in enumerate(args)]
        results = run.driver.call_now(fn, *inputs)
    except (LuaRuntimeError, FlowFailure) as exc:
        raise _caller_error(sandbox, exc, what) from None
    value = results[0] if results else None
    err = results[1] if len(results) > 1 else None
    if validating and (value is False or err is not None):
        reason = sandbox.failure_of(err).message if err is not None else "rejected"
        raise ApplicationError(truncated(f"{what} rejected the update: {reason}", sandbox.limits.error_bytes),
                               type="INVALID", non_retryable=True)
    if err is not None:
        raise _sent(sandbox, sandbox.failure_of(err))
    return None if validating else _result(sandbox, value, f"{what} result")


async def _call_update(run: WorkflowRun, fn: Any, args: Sequence[RawValue], what: str) -> Any:
    sandbox = run.sandbox
    converter = workflow.payload_converter()
    inputs = [sandbox.import_(converter.from_payload(arg.payload), f"{what} argument {i + 1}")
              for i, arg in enumerate(args)]
    try:
        results = await run.driver.call(fn, *inputs)
    except (LuaRuntimeError, FlowFailure) as exc:
        raise _caller_error(sandbox, exc, what) from None
    value = results[0] if results else None
    err = results[1] if len(results) > 1 else None
    if err is not None:
        raise _sent(sandbox, sandbox.failure_of(err))
    return _result(sandbox, value, f"{what} result")


def _result(sandbox: LuaSandbox, value: Any, what: str) -> Any:
    """A query's or update's answer for Temporal: no larger than one payload may be (else LIMIT_EXCEEDED)."""
    plain = sandbox.export(value, what)
    try:
        check_payload(plain, sandbox.limits, f"the {what}", where=f"the {what}")
    except QuotaExceeded as exc:
        raise _sent(sandbox, exc) from None
    return plain


def _sent(sandbox: LuaSandbox, failure: FlowFailure) -> ApplicationError:
    """The ApplicationError for a failure of Lua code: its texts and details cut to the run's quotas."""
    return to_application_error(bounded_failure(failure, sandbox.limits))


def _caller_error(sandbox: LuaSandbox, exc: Exception, what: str) -> ApplicationError:
    if isinstance(exc, FlowFailure):
        return _sent(sandbox, exc)
    assert isinstance(exc, LuaRuntimeError)
    if exc.value is not None and sandbox.error_fields(exc.value) is not None:
        return _sent(sandbox, sandbox.failure_of(exc.value))
    return ApplicationError(f"{what} failed: {exc.message}", {"traceback": exc.traceback}, type="INTERNAL",
                            non_retryable=True)


class RevisionChanged(Exception):
    """auto_upgrade: a newer revision was applied; failing this task makes Temporal replay the run on it."""


def _upgrade_check(source: RevisionSource, revision: Revision) -> None:
    if workflow.unsafe.is_replaying():
        return
    try:
        current = source.workflow(workflow.info().workflow_type)
    except FlowFailure:
        return  # the entry was removed: keep running what we have
    if current.digest != revision.digest:
        raise RevisionChanged(f"{revision.entry_id}: revision {current.short_digest} was applied (this run executed "
                              f"{revision.short_digest}); replaying on it (worker versioning: auto_upgrade)")


def _moved_check(source: RevisionSource, revision: Revision) -> None:
    """Pinned: ``flowctl upgrade`` moved this cached run; failing the task replays it on its new revision."""
    if workflow.unsafe.is_replaying():
        return
    info = workflow.info()
    moved = source.upgraded(info.workflow_id, info.run_id)
    if moved is not None and moved != revision.digest:
        raise RevisionChanged(f"{revision.entry_id}: `flowctl upgrade` moved this run to revision {moved[:12]} (it "
                              f"executed {revision.short_digest}); replaying on it")


def _quarantine_check(source: RevisionSource, *, always: bool = False) -> None:
    """The worker's watchdog stopped this run's Lua and quarantined it: fail the run, do not run it again.

    A workflow task fails the run from the task the watchdog stopped on (``quarantine_due``:
    earlier tasks replay as they ran); a query or update validator (``always``) fails at once.
    """
    info = workflow.info()
    record = source.quarantined(info.workflow_id, info.run_id)
    if record is not None and (always or quarantine_due(record, info.get_current_history_length(),
                                                        workflow.unsafe.is_replaying())):
        raise to_application_error(quarantine_failure(record))


def _pinned_revision(source: RevisionSource, follow_pins: bool = True, record_pin: bool | None = None) -> Revision:
    """The revision this run executes: where ``flowctl upgrade`` moved it, else the one in its memo,
    else the current one (then recorded).

    ``record_pin`` (default: ``follow_pins``) says whether a run without the memo records it;
    a replay must do what the worker that wrote the history did.
    """
    info = workflow.info()
    memo_digest = workflow.memo_value(REVISION_MEMO, None)
    digest = (source.upgraded(info.workflow_id, info.run_id) or memo_digest) if follow_pins else None
    try:
        revision = source.workflow(info.workflow_type, digest if isinstance(digest, str) else None)
    except FlowFailure as failure:
        # Not an ApplicationError on purpose: the task is retried, so a worker that has not yet
        # seen a fresh apply picks the run up once it has (Temporal does the same for unknown types).
        raise LuaWorkflowError(f"{failure.message}") from None
    if memo_digest is None and (follow_pins if record_pin is None else record_pin):
        workflow.upsert_memo({REVISION_MEMO: revision.digest})
    return revision


def _listed_modules(revision: Revision) -> list[str]:
    modules = revision.data.get("modules") or []
    return [m for m in modules if isinstance(m, str)]


def _entrypoint(sandbox: LuaSandbox, revision: Revision) -> Any:
    """Register the entry's imported libraries and compile its source into the run's entry point."""
    for alias, library in imported_libraries(revision):
        assert library.source is not None
        sandbox.add_library(alias, library.source, library.source_name or f"{library.name}.lua")
    if revision.source is None:
        raise LuaWorkflowError(f"{revision.entry_id}: the revision has no Lua source")
    method = str(revision.data.get("method") or "main")
    return sandbox.entrypoint(revision.source, revision.source_name or f"{revision.name}.lua", method)


#: The patch marker a run records when its revision declares a schema. Runs started before flowctl
#: enforced schemas have no marker, so their replays skip the checks and stay deterministic.
CONTRACTS_PATCH = INTERNAL_PATCH_PREFIX + "contracts.v1"  # hidden from command listings (runner.history)


def _contracts_enforced(revision: Revision) -> bool:
    """Whether this run checks its input and result (only runs that recorded CONTRACTS_PATCH)."""
    if not (revision.data.get("input_schema") or revision.data.get("output_schema")):
        return False
    return workflow.patched(CONTRACTS_PATCH)


def _outcome(sandbox: LuaSandbox, results: tuple[Any, ...],
             revision: Revision | None = None) -> tuple[Any, FlowFailure | None]:
    """The workflow result, or the failure of ``return nil, err`` (or INVALID_OUTPUT: see output_schema)."""
    value = results[0] if results else None
    err = results[1] if len(results) > 1 else None
    if err is not None:
        return None, sandbox.failure_of(err)
    plain = sandbox.export(value, "result")
    check_payload(plain, sandbox.limits, "the result", where="the workflow's result")
    refused = None if revision is None else contract_failure(revision, "output_schema", plain)
    return (plain, None) if refused is None else (None, refused)


def _runtime_error(sandbox: LuaSandbox, exc: LuaRuntimeError) -> Exception:
    """An error() with an error object fails the workflow; anything else fails the task."""
    if exc.value is not None and sandbox.error_fields(exc.value) is not None:
        return _sent(sandbox, sandbox.failure_of(exc.value))
    return LuaWorkflowError(truncated(str(exc), sandbox.limits.error_bytes))

"""The one dynamic activity a flowctl worker registers: it runs the entry named by the activity type.

- ``function.lua``: a fresh LuaSandbox per call, run on the worker's thread pool so Lua
  CPU never blocks the event loop (heartbeats and other activities keep flowing).
  ``method(input…)`` returning ``nil, err`` or raising ``error()`` fails the attempt:
  retryable unless the error says otherwise; limits fail it with a non-retryable
  ``LIMIT_EXCEEDED``. ``return activity.pending()`` leaves the activity open (async completion:
  completed, failed or heartbeated from outside by ``activity.info().task_token``, runner/client/
  async_activities.py); its timeouts keep applying and no worker slot is held meanwhile.
  Its limits are the worker's, narrowed by the ``limits:`` of its worker entry and of its own
  entry (a result larger than ``payload_bytes`` is LIMIT_EXCEEDED; error texts are cut to
  ``error_bytes``: docs/sandbox.md, Quotas).
- ``function.python``: ``handler: "package.module:function"`` imported by the worker
  (installed, on ``PYTHONPATH``, or under ``flowctl worker --python-path``); an ``async def``
  runs on the event loop, a plain ``def`` on the thread pool. Handlers may use
  ``temporalio.activity`` (heartbeat, info, is_cancelled) from either, and
  ``temporalio.activity.raise_complete_async()`` to leave the activity open for completion
  from outside (``activity.info().task_token``, base64-encoded for ``flowctl activity``). The first call of
  each revision compares the imported module's file with the one the revision recorded
  at apply and logs a warning when they differ.

An entry's ``input_schema`` is checked before its code runs and its ``output_schema`` on the result
(not on ``activity.pending()``): a value they refuse fails the activity non-retryably with
``INVALID_INPUT`` / ``INVALID_OUTPUT`` naming the JSON path and the schema rule (registry.contracts).

Every failure crosses Temporal as an ApplicationError (runner.temporal.failures), so a
workflow's Lua sees ``err:kind()``, ``err:retryable()``, ``err:message()``.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import dataclasses
import functools
import hashlib
import importlib
import inspect
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from typing import Any

import temporalio.activity
from temporalio import activity
from temporalio.common import RawValue
from temporalio.service import RPCError, RPCStatusCode

from registry.revision import Revision
from runner.revision_source import RevisionSource, imported_libraries
from runner.sandbox.driver import Blocking, Handler, Reply, ShimError, run_until_done
from runner.sandbox.failures import FlowFailure, LimitExceeded, LuaRuntimeError
from runner.sandbox.quotas import bounded_failure, check_payload, entry_limits
from runner.sandbox.runtime import ACTIVITY_LIMITS, LuaSandbox, SandboxLimits
from runner.sandbox.values import command_op
from runner.shims.activity_modules import ActivityCalls, install_activity_modules
from runner.temporal.failures import contract_failure, to_application_error
from runner.temporal.interceptors import current_context
from runner.temporal.metrics import limit_hit
from runner.temporal.watchdog import quarantine_failure, watched_activity

__all__ = ["ActivityRunner", "make_activity"]

_log = logging.getLogger(__name__)


class ActivityRunner:
    """Runs activity entries; ``make_activity`` wraps ``run`` as the worker's dynamic activity."""

    def __init__(self, source: RevisionSource, *, executor: Executor | None = None,
                 limits: SandboxLimits = ACTIVITY_LIMITS) -> None:
        self.source = source
        self.executor = executor
        self.limits = limits
        self._handlers: dict[str, Callable[..., Any]] = {}
        #: module name -> (file, sha256) of the handler module as first imported (None: no source file)
        self._module_files: dict[str, tuple[str, str] | None] = {}
        #: digests of the function.python revisions whose handler file was compared with the import
        self._checked: set[str] = set()
        self._import_lock = threading.Lock()

    async def run(self, args: Sequence[RawValue]) -> Any:
        """Execute the current attempt of the activity whose type is an entry ID."""
        info = activity.info()
        if info.activity_type in INTERNAL_ACTIVITIES:
            converter = activity.payload_converter()
            return await INTERNAL_ACTIVITIES[info.activity_type](
                *[converter.from_payload(arg.payload) for arg in args])
        quarantined = self.source.quarantined(info.workflow_id or "", info.workflow_run_id or "", info.activity_id)
        if quarantined is not None:  # the watchdog stopped an earlier attempt (docs/sandbox.md)
            raise to_application_error(quarantine_failure(quarantined))
        try:
            revision = self.source.activity(info.activity_type)
            converter = activity.payload_converter()
            inputs = [converter.from_payload(arg.payload) for arg in args]
            _check_contract(revision, "input_schema", inputs[0] if inputs else None)
            if revision.kind == "function.python":
                result = await self._run_python(revision, inputs)
            else:
                result = await self._run_lua(revision, inputs)
            if isinstance(result, _Pending):  # `return activity.pending()`: completed later from outside
                activity.raise_complete_async()
            _check_contract(revision, "output_schema", result)
        except FlowFailure as failure:
            if isinstance(failure, LimitExceeded):
                limit_hit(info.activity_type, failure.limit, in_workflow=False)
            raise to_application_error(failure) from None
        return result

    # ------------------------------------------------------------------ Lua

    async def _run_lua(self, revision: Revision, inputs: list[Any]) -> Any:
        loop = asyncio.get_running_loop()
        calls = _activity_calls(loop)
        context = contextvars.copy_context()
        return await loop.run_in_executor(self.executor, context.run, watched_activity(self._run_lua_sync), revision,
                                          inputs, calls)

    def _run_lua_sync(self, revision: Revision, inputs: list[Any], calls: ActivityCalls) -> Any:
        """Run one Lua activity call to completion on this (pool) thread."""
        limits = entry_limits(self.limits, revision, self.source.entry)
        sandbox = LuaSandbox(limits=limits, clock_ns=time.time_ns, owner=revision.entry_id)
        listed = revision.data.get("modules")
        handlers = install_activity_modules(sandbox, calls, None if listed is None else map(str, listed),
                                            owner=revision.entry_id)
        self._install_libraries(sandbox, revision)
        assert revision.source is not None and revision.source_name is not None
        method = str(revision.data.get("method") or "main")
        try:
            fn = sandbox.entrypoint(revision.source, revision.source_name, method)
            lua_inputs = [sandbox.import_(value, path=f"input[{i + 1}]") for i, value in enumerate(inputs)]
            sandbox.begin_task()
            results = run_until_done(sandbox, sandbox.start(fn), functools.partial(_answer, handlers, calls),
                                     *lua_inputs)
        except LuaRuntimeError as exc:
            if exc.value is not None and sandbox.error_fields(exc.value) is not None:
                raise bounded_failure(sandbox.failure_of(exc.value), limits) from None
            # error("...") or a runtime error: a retryable INTERNAL failure with the Lua traceback
            raise FlowFailure("INTERNAL", exc.message, retryable=True, where=exc.where,
                              details={"traceback": exc.traceback}) from None
        result = results[0] if results else None
        err = results[1] if len(results) > 1 else None
        if err is not None:
            raise bounded_failure(sandbox.failure_of(err), limits)
        plain = sandbox.export(result, path="result")
        if calls.pending_marker is not None and plain == calls.pending_marker:
            return _Pending()
        check_payload(plain, limits, "the result", where=f"the result of {revision.entry_id}")
        return plain

    def _install_libraries(self, sandbox: Any, revision: Revision) -> None:
        for alias, lib in imported_libraries(revision):
            assert lib.source is not None
            sandbox.add_library(alias, lib.source, lib.source_name or f"{lib.name}.lua")

    # ------------------------------------------------------------------ Python

    async def _run_python(self, revision: Revision, inputs: list[Any]) -> Any:
        handler = self._handler(revision)
        if inspect.iscoroutinefunction(handler):
            return await handler(*inputs)
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        context.run(_use_threadsafe_heartbeat, loop)
        return await loop.run_in_executor(self.executor, context.run, handler, *inputs)

    def _handler(self, revision: Revision) -> Callable[..., Any]:
        spec = str(revision.data.get("handler") or "")
        with self._import_lock:
            handler = self._handlers.get(spec) or self._import_handler(revision, spec)
            if revision.digest not in self._checked:  # once per revision: a warning, not a flood
                self._checked.add(revision.digest)
                _check_handler_file(revision, self._module_files.get(spec.partition(":")[0]))
            return handler

    def _import_handler(self, revision: Revision, spec: str) -> Callable[..., Any]:
        """Import ``module:function`` (under the import lock) and remember the module file's digest."""
        module_name, _, attr = spec.partition(":")
        hint = "install the module or start the worker with --python-path DIR (default: the entries dir)"
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            raise FlowFailure(
                "INVALID", f"{revision.entry_id}: cannot import handler module {module_name!r}: "
                f"{type(exc).__name__}: {exc}; {hint}", retryable=False) from None
        handler = getattr(module, attr, None)
        if not callable(handler):
            raise FlowFailure("INVALID", f"{revision.entry_id}: module {module_name!r} has no function "
                              f"{attr!r}; fix `handler: {spec}`", retryable=False)
        self._handlers[spec] = handler
        self._module_files.setdefault(module_name, _module_file(module))
        return handler


async def _terminate(request: dict[str, Any]) -> None:
    """``process.terminate`` from a workflow: only a client can terminate another workflow."""
    workflow_id = str(request["workflow_id"])
    try:
        await activity.client().get_workflow_handle(workflow_id).terminate(reason=str(request.get("reason") or ""))
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:  # already gone: terminating it again is a no-op
            return
        raise


#: flowctl's own activities, run by every worker on behalf of the process module.
INTERNAL_ACTIVITIES: dict[str, Callable[..., Awaitable[Any]]] = {"flowctl.process.terminate": _terminate}


def make_activity(source: RevisionSource, *, executor: Executor | None = None,
                  limits: SandboxLimits = ACTIVITY_LIMITS) -> Callable[..., Any]:
    """The dynamic activity (``@activity.defn(dynamic=True)``) serving every activity entry of ``source``."""
    runner = ActivityRunner(source, executor=executor, limits=limits)

    @activity.defn(dynamic=True)
    async def flowctl_activity(args: Sequence[RawValue]) -> Any:
        return await runner.run(args)

    return flowctl_activity


# ---------------------------------------------------------------------- helpers


def _check_contract(revision: Revision, field: str, value: Any) -> None:
    """Non-retryable INVALID_INPUT / INVALID_OUTPUT when the entry's schema refuses ``value``."""
    failure = contract_failure(revision, field, value)
    if failure is not None:
        raise failure


def _module_file(module: Any) -> tuple[str, str] | None:
    """The imported module's source file and its sha256 (read right after the import)."""
    file = getattr(module, "__file__", None)
    if not isinstance(file, str) or not file.endswith(".py"):
        return None  # a namespace package or a compiled module: nothing to compare
    try:
        with open(file, "rb") as handle:
            return file, hashlib.sha256(handle.read()).hexdigest()
    except OSError:
        return None


def _check_handler_file(revision: Revision, imported: tuple[str, str] | None) -> None:
    """Warn when the handler module this worker imported is not the one the revision was applied with."""
    recorded = revision.handler_file
    if recorded is None or imported is None or imported[1] == recorded.sha256:
        return
    file, digest = imported
    _log.warning(
        "%s: handler module %s (sha256 %s) differs from revision %s, applied with %s (sha256 %s); the worker runs "
        "other code than the registry records: the file changed after apply or the worker's --python-path is "
        "another directory; restart the worker after changing handler code and apply from its --python-path",
        revision.entry_id, file, digest[:12], revision.short_digest, recorded.path, recorded.sha256[:12])


class _Pending:
    """What a Lua activity's call returns when it returned ``activity.pending()``."""


def _answer(handlers: dict[str, Handler], calls: ActivityCalls, command: Any) -> Reply:
    """The reply to one shim command of a Lua activity call."""
    if calls.is_cancelled():
        # Every command is a cancellation point; the attempt is already reported cancelled.
        raise FlowFailure("CANCELED", "the activity was cancelled", retryable=False)
    op = command_op(command)
    handler = handlers.get(op) if op is not None else None
    if handler is None:
        raise ShimError(f"{op!r} is not available in activities" if op is not None
                        else "a yielded value is not a flowctl command")
    reply = handler(command)
    assert not isinstance(reply, Blocking), f"{op}: an activity's handlers answer at once"
    return reply


def _activity_calls(loop: asyncio.AbstractEventLoop) -> ActivityCalls:
    """Bridge the Lua thread to this attempt's activity context (heartbeats go via the loop)."""
    info = activity.info()
    heartbeat = _threadsafe_heartbeat(loop)
    return ActivityCalls(
        info=lambda: {
            "activity_id": info.activity_id,
            "activity_type": info.activity_type,
            "attempt": info.attempt,
            "task_queue": info.task_queue,
            "workflow_id": info.workflow_id,
            "workflow_run_id": info.workflow_run_id,
            "workflow_type": info.workflow_type,
            "namespace": info.workflow_namespace,
            "heartbeat_details": list(info.heartbeat_details),
            "task_token": base64.b64encode(info.task_token).decode("ascii"),
        },
        heartbeat=heartbeat,
        is_cancelled=activity.is_cancelled,
        wait_cancelled=lambda seconds: _wait_cancelled(seconds),
        context=current_context(),
    )


def _wait_cancelled(seconds: float) -> bool:
    activity.wait_for_cancelled_sync(seconds)
    return activity.is_cancelled()


def _threadsafe_heartbeat(loop: asyncio.AbstractEventLoop) -> Callable[..., None]:
    # The SDK's heartbeat for async activities schedules an asyncio task, so it must run on
    # the worker's loop; from a pool thread we hand it over instead of calling it directly.
    send = activity.heartbeat
    context = contextvars.copy_context()

    def heartbeat(*details: Any) -> None:
        loop.call_soon_threadsafe(lambda: context.run(send, *details))

    return heartbeat


def _use_threadsafe_heartbeat(loop: asyncio.AbstractEventLoop) -> None:
    """Make ``temporalio.activity.heartbeat()`` usable from a sync handler's pool thread."""
    # A private SDK type, but the only way to give user code the public heartbeat API from a
    # thread of an async activity (the SDK does the same for its own sync activities).
    current = temporalio.activity._Context.current()
    temporalio.activity._Context.set(dataclasses.replace(current, heartbeat=_threadsafe_heartbeat(loop)))

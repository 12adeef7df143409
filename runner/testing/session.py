"""Running Lua test functions against the time-skipping test server.

Each ``test_*`` function runs in its own :class:`~runner.sandbox.runtime.LuaSandbox`, driven by
the command loop below on the event loop's thread. The ``test`` module's functions yield
commands; ``test.run`` starts the workflow entry on the time-skipping server, served by
a worker on a task queue of its own (every ``temporal.worker`` entry is rewritten to it)
whose dynamic activity runs **mocks** — Lua functions of the test — as new Lua threads of
the same sandbox (so a mock can record calls in the test's locals), and every other
activity for real. An activity left pending (async completion) calls the run's ``pending``
handler for it, another Lua thread, which completes, fails or heartbeats it from outside
(runner/testing/pending.py). lupa runtimes are not thread-safe, so mocks run in an ``async def``
activity on the loop, never in the thread pool.

Budgets, so a test that never finishes fails and the run goes on: an instruction budget
for the test's Lua (mocks included), a virtual-time budget per workflow run (its execution
timeout, default 30 days), and a real-time budget per test (default 60 s).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import functools
import os
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.activity import _CompleteAsyncError  # what raise_complete_async() raises: the activity is pending
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.common import RawValue
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from registry.diagnostics import display_path
from registry.durations import parse_duration
from registry.errors import FlowError
from registry.revision import Revision
from runner.client.start import NO_INPUT, start_workflow
from runner.dev.binaries import find_test_server
from runner.history import commands_of, event_type_name
from runner.revision_source import ProjectRevisionSource
from runner.sandbox.driver import ShimError, run_until_done, run_until_done_async
from runner.sandbox.failures import FlowFailure, LimitExceeded, LuaRuntimeError
from runner.sandbox.runtime import LuaSandbox, SandboxLimits
from runner.sandbox.values import command_op, flag, lua_field, text
from runner.shims.workflow_modules import install_log
from runner.temporal.activities import ActivityRunner
from runner.temporal.failures import failure_from_temporal, to_application_error
from runner.temporal.interceptors import ContextInterceptor
from runner.temporal.workflow import make_workflow_class
from runner.testing.discovery import TestFile, TestId
from runner.testing.golden import check_golden, golden_path, text_diff
from runner.testing.lua_module import FAILED_KIND, install_test_module
from runner.testing.pending import OUTSIDE_OPS, activity_ref, call_outside, pending_view

__all__ = ["DEFAULT_TEST_TIMEOUT", "DEFAULT_VIRTUAL_TIMEOUT", "LuaTestSession", "Outcome", "start_session"]

#: Real seconds one test function may take (all its runs included).
DEFAULT_TEST_TIMEOUT = 60.0
#: Virtual time one workflow run may take before the test fails (``test.run(..., {timeout = "1y"})``).
DEFAULT_VIRTUAL_TIMEOUT = "30d"
#: Lua instructions one test function (with its mocks) may execute.
TEST_LIMITS = SandboxLimits(instructions=200_000_000)
_RUN_OPTIONS = ("mocks", "pending", "signals", "timeout", "id", "context")
_TEST_MODULES = "test, json, errors"


@dataclass
class Outcome:
    """The result of one test function (or of loading one test file)."""

    test: TestId
    status: str  # "passed" | "failed"
    duration: float
    message: str = ""
    where: str | None = None
    #: a diff for assertion failures, a Lua traceback for errors
    detail: str = ""
    output: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (``flowctl test --format json``)."""
        return {"file": display_path(self.test.file), "name": self.test.name, "id": self.test.display(),
                "outcome": self.status, "duration": round(self.duration, 3), "message": self.message,
                "where": self.where, "detail": self.detail, "output": self.output}


class _TestFailed(Exception):
    """The test failed: ``message`` at ``where``, with a diff or traceback in ``detail``."""

    def __init__(self, message: str, where: str | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        self.detail = detail


class LuaTestSession:
    """One time-skipping server shared by every test of a run; see :func:`start_session`."""

    def __init__(self, env: WorkflowEnvironment, *, update_golden: bool = False,
                 test_timeout: float = DEFAULT_TEST_TIMEOUT,
                 limits: SandboxLimits = TEST_LIMITS) -> None:
        self.env = env
        self.update_golden = update_golden
        self.test_timeout = test_timeout
        self.limits = limits
        self.executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="flowctl-test-activity")
        self._sources: dict[Path, ProjectRevisionSource | FlowError] = {}

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ collection

    def collect(self, test_file: TestFile) -> TestFile:
        """Load the file once to list its ``test_*`` functions (in source order); errors go to ``error``."""
        try:
            sandbox, module = self._load(test_file)
            test_file.tests = [name for _line, name in sorted(_test_functions(sandbox, module))]
            if not test_file.tests:
                test_file.error = (f"{display_path(test_file.path)} defines no test_* functions; define "
                                   "`local function test_something() ... end` and return them, or global "
                                   "`function test_something() ... end`")
        except _TestFailed as exc:
            test_file.error = f"{exc.message}{(chr(10) + exc.detail) if exc.detail else ''}"
            test_file.error_where = exc.where
        except OSError as exc:
            test_file.error = f"cannot read {display_path(test_file.path)}: {exc.strerror or exc}"
        return test_file

    def _load(self, test_file: TestFile) -> tuple[LuaSandbox, Any]:
        """A fresh sandbox with the test modules and the file's chunk run; returns its module table."""
        sandbox = LuaSandbox(limits=self.limits, owner=display_path(test_file.path))
        sandbox.configure(display_path(test_file.path), _TEST_MODULES)
        sandbox.add_module("json")
        sandbox.add_module("errors")
        install_test_module(sandbox)
        install_log(sandbox)
        source = test_file.path.read_text(encoding="utf-8")
        sandbox.begin_task()
        try:
            chunk = sandbox.compile(source, display_path(test_file.path))
            results = run_until_done(sandbox, sandbox.start(chunk), _while_loading)
        except LuaRuntimeError as exc:
            message = exc.message
            if exc.where and message.startswith(f"{exc.where}: "):
                message = message[len(exc.where) + 2:]
            raise _TestFailed(f"cannot load {display_path(test_file.path)}: {message}", exc.where,
                              _user_frames(exc.traceback)) from None
        except LimitExceeded as exc:
            raise _TestFailed(f"cannot load {display_path(test_file.path)}: {exc.message}", exc.where) from None
        return sandbox, results[0] if results else None

    # ------------------------------------------------------------------ running

    async def run(self, test_file: TestFile, name: str) -> Outcome:
        """Run one test function; never raises for anything the test or the code under test does."""
        test = TestId(test_file.path, name)
        started = time.perf_counter()
        case = _TestCase(self, test_file, test)
        try:
            await asyncio.wait_for(case.run(), self.test_timeout)
            if case.mock_failure is not None:
                raise case.mock_failure
            status, message, where, detail = "passed", "", None, ""
        except _TestFailed as exc:
            exc = case.handler_failure or exc  # the workflow stopped because a pending handler failed
            status, message, where, detail = "failed", exc.message, exc.where, exc.detail
        except TimeoutError:
            waiting = (f"an activity left pending ({', '.join(case.unhandled)}) that no `pending` handler "
                       "completes? the server does not skip time while one is open" if case.unhandled else
                       "is a workflow waiting for a signal the test never sends?")
            status, message, where, detail = "failed", (
                f"the test did not finish within {self.test_timeout:g}s of real time ({waiting}); raise the "
                "budget with --timeout"), case.where, ""
        except Exception as exc:  # a bug in flowctl: report it on this test, keep going
            if os.environ.get("FLOWCTL_DEBUG"):
                raise
            status, message, where, detail = "failed", f"internal error: {type(exc).__name__}: {exc}", None, ""
        finally:
            await case.close()
        return Outcome(test=test, status=status, duration=time.perf_counter() - started, message=message,
                       where=where, detail=detail, output=case.output)

    def source_for(self, entries_dir: Path) -> ProjectRevisionSource:
        """The entries under test (loaded once per directory); a FlowError when they are invalid."""
        key = entries_dir.resolve()
        if key not in self._sources:
            try:
                self._sources[key] = ProjectRevisionSource.from_paths([entries_dir])
            except FlowError as exc:
                self._sources[key] = exc
        found = self._sources[key]
        if isinstance(found, FlowError):
            raise _TestFailed(f"the entries in {display_path(entries_dir)} cannot be loaded: {found.message}",
                              detail=found.hint or "")
        return found


class _TestCase:
    """One running test function: its sandbox, its worker, its last workflow run."""

    def __init__(self, session: LuaTestSession, test_file: TestFile, test: TestId) -> None:
        self.session = session
        self.file = test_file
        self.test = test
        self.output: list[str] = []
        self.mocks: dict[str, Any] = {}
        self.mock_failure: _TestFailed | None = None
        #: ``pending`` handlers of the current run, their running threads, and the first one that failed
        self.pending: dict[str, Any] = {}
        self.handler_failure: _TestFailed | None = None
        self._handler_tasks: set[asyncio.Task[None]] = set()
        self.unhandled: list[str] = []  # activities left pending without a handler
        self._pending_types: dict[str | tuple[str, str], str] = {}  # token / (workflow, activity id) -> type
        self.pending_marker = f"flowctl.test.pending:{uuid.uuid4()}"
        self.where: str | None = None
        self.history: list[HistoryEvent] | None = None
        self.runs = 0
        self.sandbox: LuaSandbox | None = None
        self._stack = contextlib.AsyncExitStack()
        self._source: ProjectRevisionSource | None = None
        self._queue = f"flowctl-test-{uuid.uuid4().hex[:12]}"

    async def run(self) -> None:
        sandbox, module = self.session._load(self.file)
        self.sandbox = sandbox
        functions = {name: fn for _line, name, fn in _test_functions(sandbox, module, with_functions=True)}
        fn = functions.get(self.test.name)
        if fn is None:
            raise _TestFailed(f"{self.test.name} is not a function of {display_path(self.file.path)}")
        try:
            await run_until_done_async(sandbox, sandbox.start(fn), self._answer)
        except LuaRuntimeError as exc:
            raise self._failure(exc) from None
        except LimitExceeded as exc:
            raise _TestFailed(f"the test exceeded its budget: {exc.message}", exc.where) from None

    async def close(self) -> None:
        for task in list(self._handler_tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await self._stack.aclose()

    def _failure(self, exc: LuaRuntimeError) -> _TestFailed:
        assert self.sandbox is not None
        fields = self.sandbox.error_fields(exc.value) if exc.value is not None else None
        if fields is not None:
            kind, message, _retryable, details, where = fields
            if kind == FAILED_KIND:
                diff = details.get("diff", "") if isinstance(details, dict) else ""
                return _TestFailed(message, where, diff or "")
            return _TestFailed(f"error raised: {kind}: {message}", where or exc.where, _user_frames(exc.traceback))
        message = exc.message
        if exc.where and message.startswith(f"{exc.where}: "):
            message = message[len(exc.where) + 2:]
        return _TestFailed(message, exc.where, _user_frames(exc.traceback))

    # ------------------------------------------------------------------ commands

    async def _answer(self, command: Any) -> tuple[Any, ...]:
        op = command_op(command)
        if op == "test.run":
            return await self._run_workflow(command)
        if op in OUTSIDE_OPS:
            return await self._outside(op, command)
        return self._answer_now(op, command)

    def _answer_in_mock(self, activity_type: str, command: Any) -> tuple[Any, ...]:
        if command_op(command) == "test.pending":
            return (self.pending_marker,)
        return self._answer_now(command_op(command), command, inside=f"the mock of {activity_type}")

    async def _answer_in_handler(self, activity_type: str, command: Any) -> tuple[Any, ...]:
        op = command_op(command)
        if op in OUTSIDE_OPS:
            return await self._outside(op, command)
        return self._answer_now(op, command, inside=f"the pending handler of {activity_type}")

    async def _outside(self, op: str, command: Any) -> tuple[Any, ...]:
        """``test.complete_activity(ref, result)``, ``fail_activity(ref, err)``, ``heartbeat_activity(ref, d)``."""
        what = f"{op}()"
        ref = activity_ref(self._export(lua_field(command, "ref", what), f"{what} activity"), what)
        payload = self._export(lua_field(command, "value", what), f"{what} value")
        activity_type = self._pending_types.get(ref.task_token or (ref.workflow_id or "", ref.activity_id or ""))
        await call_outside(self.session.env.client, op, ref, payload, what, self._source, activity_type)
        return ()

    def _answer_now(self, op: Any, command: Any, *, inside: str | None = None) -> tuple[Any, ...]:
        sandbox = self.sandbox
        assert sandbox is not None
        if op == "log":
            where = text(command, "where", "log", optional=True) or "?"
            self.output.append(f"[{where}] {text(command, 'message', 'log')}")
            return ()
        if op == "test.diff":
            return (text_diff(text(command, "expected", "test.diff"), text(command, "actual", "test.diff")),)
        if inside is not None:
            raise ShimError(f"{op} cannot be used inside {inside}")
        if op in ("test.history", "test.commands", "test.golden"):
            if self.history is None:
                raise ShimError(f"{op}(): no workflow has run yet; call test.run first")
            if op == "test.history":
                return (sandbox.import_([event_type_name(e) for e in self.history], "test.history()"),)
            commands = commands_of(self.history)
            if op == "test.commands":
                return (sandbox.import_(commands, "test.commands()"),)
            try:
                path = golden_path(self.file.path, text(command, "name", "test.golden"))
            except ValueError as exc:
                raise ShimError(str(exc)) from None
            problem, diff = check_golden(path, commands, update=self.session.update_golden,
                                         display=display_path(path))
            return (problem, diff)
        raise ShimError(f"unknown test command {op!r}")

    # ------------------------------------------------------------------ test.run

    async def _worker_source(self) -> ProjectRevisionSource:
        """Serve the entries on this test's own task queue (started at the first test.run)."""
        if self._source is not None:
            return self._source
        base = self.session.source_for(self.file.entries_dir)
        revisions: list[Revision] = []
        for rev in base.entries():
            if rev.kind == "temporal.worker":
                rev = dataclasses.replace(rev, data={**rev.data, "task_queue": self._queue})
            revisions.append(rev)
        source = ProjectRevisionSource(revisions)
        real = ActivityRunner(source, executor=self.session.executor)

        @activity.defn(dynamic=True)
        async def flowctl_test_activity(args: Sequence[RawValue]) -> Any:
            info = activity.info()
            mock = self.mocks.get(info.activity_type)
            try:
                if mock is None:
                    return await real.run(args)
                return self._call_mock(info.activity_type, mock, args)
            except _CompleteAsyncError:  # pending: its handler (if any) runs once the activity has returned
                self._on_pending(info, args)
                raise

        worker = Worker(self.session.env.client, task_queue=self._queue, workflows=[make_workflow_class(source)],
                        activities=[flowctl_test_activity], activity_executor=self.session.executor,
                        workflow_runner=UnsandboxedWorkflowRunner(), interceptors=[ContextInterceptor()],
                        graceful_shutdown_timeout=timedelta(seconds=1))
        await self._stack.enter_async_context(worker)
        self._source = source
        return source

    async def _run_workflow(self, command: Any) -> tuple[Any, ...]:
        sandbox = self.sandbox
        assert sandbox is not None
        entry_id = text(command, "id", "test.run")
        what = f"test.run({entry_id!r})"
        source = await self._worker_source()
        try:
            source.workflow(entry_id)
        except FlowFailure:
            known = ", ".join(r.entry_id for r in source.entries("workflow.lua")) or "none"
            raise ShimError(f"{what}: no workflow.lua entry {entry_id} in {display_path(self.file.entries_dir)} "
                            f"(known: {known})") from None
        options = self._run_options(lua_field(command, "options", what), what, source)
        value = NO_INPUT
        if flag(command, "has_input", what):
            value = self._export(lua_field(command, "input", what), f"{what} input")
        self.runs += 1
        workflow_id = options["id"] or f"test-{self.test.name}-{self.runs}-{uuid.uuid4().hex[:8]}"
        client = self.session.env.client
        try:
            started = await start_workflow(client, source, entry_id, value, workflow_id=workflow_id,
                                           context=options["context"],
                                           options={"execution_timeout": options["timeout_text"]})
        except FlowError as exc:
            raise ShimError(f"{what}: {exc.message}" + (f" ({exc.hint})" if exc.hint else "")) from None
        handle = started.handle
        self.mocks, self.pending = options["mocks"], options["pending"]
        try:
            await self._send_signals(handle, options["signals"], what)
            return await self._result(handle, what, options["timeout_text"])
        finally:
            self.mocks, self.pending = {}, {}
            with contextlib.suppress(RPCError):
                self.history = list((await handle.fetch_history()).events)

    def _run_options(self, table: Any, what: str, source: ProjectRevisionSource) -> dict[str, Any]:
        sandbox = self.sandbox
        assert sandbox is not None
        found: dict[str, Any] = {"mocks": {}, "pending": {}, "signals": [], "id": None, "context": None,
                                 "timeout_text": DEFAULT_VIRTUAL_TIMEOUT}
        for key, value in table.items():
            if key not in _RUN_OPTIONS:
                raise ShimError(f"{what}: unknown option {key!r} (known: {', '.join(_RUN_OPTIONS)})")
            if key in ("mocks", "pending"):
                found[key] = self._mocks(value, what, source, key)
            elif key == "signals":
                found["signals"] = self._signals(value, what)
            elif key == "timeout":
                found["timeout_text"] = self._duration(value, f"{what} timeout")
            elif key == "id":
                found["id"] = str(value)
            elif key == "context":
                context = self._export(value, f"{what} context")
                if not isinstance(context, dict):
                    raise ShimError(f"{what}: context must be a table of values")
                found["context"] = context
        return found

    def _mocks(self, table: Any, what: str, source: ProjectRevisionSource, option: str = "mocks") -> dict[str, Any]:
        """The ``mocks`` (or ``pending`` handlers) option: activity entry ID -> Lua function."""
        sandbox = self.sandbox
        assert sandbox is not None
        if sandbox.lua_type(table) != "table":
            raise ShimError(f"{what}: {option} must be a table like {{[\"app:charge\"] = function(...) ... end}}")
        mocks: dict[str, Any] = {}
        for key, fn in table.items():
            if not isinstance(key, str) or sandbox.lua_type(fn) != "function":
                raise ShimError(f"{what}: {option}[{key!r}] must map an activity entry ID to a function")
            try:
                source.activity(key)
            except FlowFailure:
                known = ", ".join(r.entry_id for r in source.entries() if r.kind in ("function.lua", "function.python"))
                raise ShimError(f"{what}: {option} names {key}, which is not an activity entry in "
                                f"{display_path(self.file.entries_dir)} (known: {known or 'none'})") from None
            mocks[key] = fn
        return mocks

    def _signals(self, table: Any, what: str) -> list[tuple[float, str, Any]]:
        sandbox = self.sandbox
        assert sandbox is not None
        if sandbox.lua_type(table) != "table":
            raise ShimError(f"{what}: signals must be a list like {{{{at = \"1h\", name = \"approve\"}}}}")
        signals = []
        for index, spec in sorted(table.items()):
            where = f"{what} signals[{index}]"
            if sandbox.lua_type(spec) != "table" or not isinstance(spec["name"], str):
                raise ShimError(f"{where}: expected {{at = \"1h\", name = \"approve\", payload = ...}}")
            at = parse_duration(self._duration(spec["at"] or 0, f"{where}.at"), what=f"{where}.at")
            payload = self._export(spec["payload"], f"{where}.payload")
            signals.append((at.total_seconds(), str(spec["name"]), payload))
        return sorted(signals, key=lambda s: s[0])

    def _duration(self, value: Any, what: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ShimError(f"{what}: expected a duration like \"1h\" or milliseconds")
        try:
            parse_duration(value, what=what)
        except FlowError as exc:
            raise ShimError(exc.message) from None
        return value

    def _export(self, value: Any, what: str) -> Any:
        assert self.sandbox is not None
        try:
            return self.sandbox.export(value, what)
        except FlowFailure as failure:
            raise ShimError(failure.message) from None

    async def _send_signals(self, handle: WorkflowHandle[Any, Any], signals: list[tuple[float, str, Any]],
                            what: str) -> None:
        env = self.session.env
        if not signals:
            return
        start = await env.get_current_time()
        for at, name, payload in signals:
            elapsed = (await env.get_current_time() - start).total_seconds()
            if at > elapsed:
                await env.sleep(at - elapsed)
            try:
                await handle.signal(name, payload)
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND:
                    raise ShimError(f"{what}: signal {name!r} at {at:g}s: the workflow had already finished; "
                                    "send it earlier") from None
                raise ShimError(f"{what}: signal {name!r}: {exc.message}") from None

    async def _result(self, handle: WorkflowHandle[Any, Any], what: str, timeout_text: str) -> tuple[Any, ...]:
        sandbox = self.sandbox
        assert sandbox is not None
        result_task = asyncio.ensure_future(handle.result())
        try:
            while True:
                done, _ = await asyncio.wait({result_task}, timeout=0.5)
                if done:
                    break
                if self.handler_failure is not None:
                    raise ShimError(f"{what}: {self.handler_failure.message}")
                await self._check_task_failures(handle, what)
            result = result_task.result()
        except WorkflowFailureError as exc:
            description = await handle.describe()
            if description.status == WorkflowExecutionStatus.TIMED_OUT:
                raise ShimError(f"{what}: the workflow did not finish within {timeout_text} of virtual time "
                                "(waiting for a signal or a timer that never comes?); pass {timeout = \"...\"} "
                                "to allow more") from None
            failure = failure_from_temporal(exc.cause or exc)
            return (None, sandbox.error_object(failure))
        finally:
            if not result_task.done():
                result_task.cancel()
                with contextlib.suppress(BaseException):
                    await result_task
                # Stop the worker first: its running activities report their cancellation while the
                # run still exists (the test server keeps time skipping locked for an activity that
                # never reports back, which would stall every later test on this server).
                await self.close()
                with contextlib.suppress(RPCError):
                    await handle.terminate(reason="flowctl test: the test ended")
        try:
            return (sandbox.import_(result, f"{what} result"),)
        except FlowFailure as failure:
            raise ShimError(failure.message) from None

    async def _check_task_failures(self, handle: WorkflowHandle[Any, Any], what: str) -> None:
        """A Lua error in the workflow fails its task, which Temporal retries forever: fail the test now."""
        history = await handle.fetch_history()
        for event in history.events:
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                failure = event.workflow_task_failed_event_attributes.failure
                raise ShimError(f"{what}: a workflow task failed (the workflow's Lua raised an error): "
                                f"{failure.message}")

    # ------------------------------------------------------------------ mocks

    def _call_mock(self, activity_type: str, fn: Any, args: Sequence[RawValue]) -> Any:
        """Run a mock (a Lua function of the test) as a new thread of the test's sandbox."""
        sandbox = self.sandbox
        assert sandbox is not None
        converter = activity.payload_converter()
        try:
            inputs = [sandbox.import_(converter.from_payload(arg.payload), f"{activity_type} input[{i + 1}]")
                      for i, arg in enumerate(args)]
            results = run_until_done(sandbox, sandbox.start(fn), functools.partial(self._answer_in_mock, activity_type),
                                     *inputs)
            err = results[1] if len(results) > 1 else None
            if err is not None:
                raise sandbox.failure_of(err)
            result = sandbox.export(results[0] if results else None, f"the mock of {activity_type} returned")
            if result == self.pending_marker:  # `return test.pending()`: left open, as activity.pending() does
                activity.raise_complete_async()
            return result
        except LimitExceeded as exc:
            self.mock_failure = _TestFailed(f"the mock of {activity_type} exceeded the test's budget: "
                                            f"{exc.message}", exc.where)
            raise to_application_error(exc) from None
        except LuaRuntimeError as exc:
            failed = self._failure(exc)
            fields = sandbox.error_fields(exc.value) if exc.value is not None else None
            if fields is not None and fields[0] == FAILED_KIND:
                self.mock_failure = failed  # an assertion inside a mock fails the test
                raise to_application_error(FlowFailure(FAILED_KIND, failed.message, retryable=False,
                                                       where=failed.where)) from None
            if fields is not None:
                raise to_application_error(sandbox.failure_of(exc.value)) from None
            raise to_application_error(FlowFailure("INTERNAL", exc.message, retryable=True, where=exc.where,
                                                   details={"traceback": exc.traceback})) from None
        except FlowFailure as failure:
            raise to_application_error(failure) from None


    def _on_pending(self, info: activity.Info, args: Sequence[RawValue]) -> None:
        """Start the run's ``pending`` handler of the activity that just went pending (if it has one)."""
        token = base64.b64encode(info.task_token).decode("ascii")
        for key in (token, (info.workflow_id or "", info.activity_id)):
            self._pending_types[key] = info.activity_type  # whose output_schema test.complete_activity checks
        fn = self.pending.get(info.activity_type)
        if fn is None:  # it stays open until its timeouts (or a later test.complete_activity)
            self.unhandled.append(info.activity_type)
            return
        converter = activity.payload_converter()
        view = pending_view(info, [converter.from_payload(arg.payload) for arg in args])
        task = asyncio.get_running_loop().create_task(self._run_handler(info.activity_type, fn, view))
        self._handler_tasks.add(task)
        task.add_done_callback(self._handler_tasks.discard)

    async def _run_handler(self, activity_type: str, fn: Any, view: dict[str, Any]) -> None:
        """A ``pending`` handler, as a new thread of the test's sandbox; its failure fails the test."""
        sandbox = self.sandbox
        assert sandbox is not None
        await asyncio.sleep(0)  # after the activity returned
        try:
            value = sandbox.import_(view, f"the pending {activity_type}")
            await run_until_done_async(sandbox, sandbox.start(fn), functools.partial(self._answer_in_handler,
                                                                                     activity_type), value)
        except LuaRuntimeError as exc:
            failed = self._failure(exc)
            self.handler_failure = _TestFailed(f"the pending handler of {activity_type}: {failed.message}",
                                               failed.where, failed.detail)
        except (LimitExceeded, FlowFailure) as exc:
            self.handler_failure = _TestFailed(f"the pending handler of {activity_type}: {exc.message}", exc.where)


def _while_loading(command: Any) -> tuple[Any, ...]:
    """While a test file loads it may log, nothing else."""
    op = command_op(command)
    if op != "log":
        raise ShimError(f"{op} cannot run while the file loads; call it inside a test_ function")
    return ()


def _user_frames(traceback: str) -> str:
    """The Lua traceback without its message line and flowctl's own frames (they say nothing to users)."""
    lines = traceback.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("stack traceback:")), len(lines))
    kept = [line for line in lines[start + 1:]
            if not line.strip().startswith(("[C]:", "?:", "(...tail calls...)"))]
    return "stack traceback:\n" + "\n".join(kept) if kept else ""


def _test_functions(sandbox: LuaSandbox, module: Any, *, with_functions: bool = False) -> list[Any]:
    """``(line, name)`` (or ``(line, name, fn)``) of the ``test_*`` functions a file returns or defines."""
    found: dict[str, Any] = {}
    tables = [sandbox.env]
    if module is not None and sandbox.lua_type(module) == "table":
        tables.append(module)
    for table in tables:
        for key, value in table.items():
            if isinstance(key, str) and key.startswith("test_") and sandbox.lua_type(value) == "function":
                found[key] = value
    listed = []
    for name, fn in found.items():
        line = sandbox.defined_line(fn)
        listed.append((line, name, fn) if with_functions else (line, name))
    return listed


@contextlib.asynccontextmanager
async def start_session(*, update_golden: bool = False, test_timeout: float = DEFAULT_TEST_TIMEOUT,
                        env: WorkflowEnvironment | None = None) -> AsyncIterator[LuaTestSession]:
    """Start the time-skipping test server (unless ``env`` is given) and a session on it."""
    owned = env is None
    if env is None:
        env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=str(find_test_server()),
                                                            runtime=_quiet_runtime())
    session = LuaTestSession(env, update_golden=update_golden, test_timeout=test_timeout)
    try:
        yield session
    finally:
        session.close()
        if owned:
            await env.shutdown()
            # let the SDK core deliver its last callbacks while the interpreter is still fully alive
            await asyncio.sleep(0.1)


@functools.cache
def _quiet_runtime() -> Runtime:
    """One SDK runtime per process whose core logs only errors (its warnings are not the user's business)."""
    return Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(
        filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))))

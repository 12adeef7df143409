"""``flowctl replay``: replay recorded histories against the current revisions (or a working tree).

The gate to run before applying a change: every history must replay on the new code
with the same commands. Histories come from files (``temporal workflow show --output
json`` and the SDK's ``WorkflowHistory.to_json()``; both are accepted) or from Temporal
(one workflow id, or every workflow a visibility query lists). Runs are replayed on the
*current* revision of their type, not the one pinned in their memo
(``make_workflow_class(follow_pins=False)``).

For a diverging history the report names the first command that differs — what the
history recorded and what the new code issued instead, with the Lua file:line that
issued it — found by recording, during the replay, every command the Lua code yields.

A workflow task that fails during the replay (a Lua error) is reported as that error and its
Lua file:line, never as the SDK's traceback: an error where the history's task completed makes
the verdict ``error`` (its message: the Lua message); the same failure the history recorded (a
stuck run) leaves it ``ok``, with a note.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import logging
import multiprocessing
import os
import re
import signal
from collections import deque
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.service import RPCError
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, WorkflowReplayResult

from registry.errors import FlowError
from registry.revision import Revision
from registry.sandbox_limits import INSTRUCTIONS_RANGE, MEMORY_RANGE
from runner.history import commands_of, format_duration
from runner.revision_source import ProjectRevisionSource, RevisionSource, StoreRevisionSource
from runner.sandbox.failures import FlowFailure, ShimError
from runner.sandbox.quotas import worker_maxima
from runner.sandbox.runtime import WORKFLOW_LIMITS
from runner.sandbox.values import command_op, integer, text
from runner.temporal.interceptors import ContextInterceptor
from runner.temporal.memo import REVISION_MEMO
from runner.temporal.workflow import make_workflow_class

__all__ = ["LoadedHistory", "ReplayReport", "ReplayResult", "fetch_histories", "load_history_dir",
           "load_history_file", "replay_histories", "replay_main"]

#: a replay runs an entry with the limits it asks for, whatever worker ran it (its worker allowed them)
_REPLAY_LIMITS = worker_maxima(WORKFLOW_LIMITS, MEMORY_RANGE[1], INSTRUCTIONS_RANGE[1])

#: Commands the Lua code issues itself (completion and the revision memo come from flowctl).
_LUA_COMMANDS = ("activity", "timer", "child", "signal_external", "marker", "upsert_search_attributes",
                 "continue_as_new", "cancel_external")
#: The SDK's logger that reports a failed workflow activation (with a Python traceback).
_ACTIVATION_LOGGER = "temporalio.worker._workflow_instance"
#: ``file.lua:12:`` at the start of a Lua error message.
_LUA_WHERE = re.compile(r"^(?P<where>[^\s:][^:\n]*\.lua:\d+): ")


@dataclass
class LoadedHistory:
    """A history to replay (``history`` None: it could not be read; ``error`` says why)."""

    name: str
    history: WorkflowHistory | None = None
    error: str | None = None

    @property
    def workflow_type(self) -> str | None:
        if self.history is None or not self.history.events:
            return None
        first = self.history.events[0]
        if first.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            return None
        return str(first.workflow_execution_started_event_attributes.workflow_type.name)


@dataclass
class ReplayResult:
    """One history's verdict: ``ok``, ``diverged`` (nondeterminism) or ``error`` (could not replay)."""

    name: str
    status: str
    workflow_type: str | None = None
    events: int = 0
    message: str = ""
    #: the Lua file:line of the new code's diverging command, when known
    where: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "workflow_type": self.workflow_type,
                "events": self.events, "message": self.message, "where": self.where}


@dataclass(frozen=True)
class ReplayReport:
    """Every history's verdict, in the order the histories were gathered."""

    results: list[ReplayResult]

    @property
    def ok(self) -> bool:
        """True when every history replayed with the same commands."""
        return all(result.ok for result in self.results)

    @property
    def diverged(self) -> bool:
        """True when the new code issues different commands for at least one history."""
        return any(result.status == "diverged" for result in self.results)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (``flowctl replay --json``)."""
        return {"ok": self.ok, "histories": [result.to_dict() for result in self.results]}


# ---------------------------------------------------------------------- loading


def load_history_file(path: Path) -> LoadedHistory:
    """One exported history; a clear error (not an exception) when the file is not one."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return LoadedHistory(name, error=f"cannot read {name}: {exc}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return LoadedHistory(name, error=f"{name}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg}); export "
                                         "histories with `temporal workflow show -w ID --output json`")
    if not isinstance(data, dict) or not isinstance(data.get("events"), list):
        return LoadedHistory(name, error=f"{name}: not a workflow history (no \"events\" list); export histories "
                                         "with `temporal workflow show -w ID --output json`")
    try:
        history = WorkflowHistory.from_json(path.stem, data)
    except Exception as exc:  # protobuf's ParseError and friends: the file is not a history
        return LoadedHistory(name, error=f"{name}: not a valid workflow history: {exc}")
    loaded = LoadedHistory(name, history=history)
    if loaded.workflow_type is None:
        return LoadedHistory(name, error=f"{name}: the history does not start with WorkflowExecutionStarted "
                                         "(a partial export?)")
    return loaded


def load_history_dir(directory: Path) -> list[LoadedHistory]:
    """Every ``*.json`` file under ``directory`` (sorted), each loaded on its own."""
    return [load_history_file(path) for path in history_files(directory)]


def history_files(directory: Path) -> list[Path]:
    """The ``*.json`` files under ``directory``, sorted; an error when there are none."""
    if not directory.is_dir():
        raise FlowError(f"{directory} is not a directory", hint="pass --histories DIR with exported *.json files")
    files = sorted(p for p in directory.rglob("*.json") if p.is_file())
    if not files:
        raise FlowError(f"no *.json histories in {directory}",
                        hint="export them with `temporal workflow show -w ID --output json > DIR/ID.json`")
    return files


async def fetch_histories(client: Client, *, workflow_id: str | None = None,
                          query: str | None = None, limit: int | None = None) -> list[LoadedHistory]:
    """The history of one workflow id, or of every workflow a visibility query lists."""
    found: list[LoadedHistory] = []
    try:
        if workflow_id is not None:
            history = await client.get_workflow_handle(workflow_id).fetch_history()
            found.append(LoadedHistory(workflow_id, history=history))
        if query is not None:
            async for history in client.list_workflows(query, limit=limit).map_histories():
                found.append(LoadedHistory(history.workflow_id, history=history))
    except RPCError as exc:
        from runner.client.connect import namespace_missing, rpc_error

        what = f"workflow {workflow_id!r}" if query is None else f"the workflows of query {query!r}"
        where = "" if namespace_missing(exc) else f" from namespace {client.namespace!r}"
        raise rpc_error(exc, f"cannot fetch {what}{where}",
                        hint="check the id / query and the --client entry") from None
    if query is not None and not found:
        raise FlowError(f"the query {query!r} matched no workflows", hint="check it in the Temporal UI first")
    return found


# ---------------------------------------------------------------------- replaying


class _CommandRecorder:
    """Records each command the Lua code yields during a replay, with the Lua file:line it came from."""

    def __init__(self) -> None:
        self.commands: list[tuple[str, str]] = []

    def attach(self, run: Any) -> None:
        sandbox = run.sandbox
        original = sandbox.resume

        def resume(thread: Any, *values: Any) -> tuple[bool, tuple[Any, ...]]:
            finished, results = original(thread, *values)
            if not finished:
                line = _lua_command_line(results[0])
                if line is not None:
                    # the suspended thread's innermost frame of user code
                    where = str(sandbox._control.limit_where(thread))
                    self.commands.append((line, where))
            return finished, results

        sandbox.resume = resume


def _lua_command_line(command: Any) -> str | None:
    """A yielded command as commands_of writes the history event it becomes (None: no Temporal command).

    Fields are read through runner.sandbox.values (typed, no user metamethod runs); a field of the
    wrong type leaves the line without its detail — the run's own handler reports the error.
    """
    op = command_op(command)
    if op in ("funcs.call", "funcs.start"):
        return f"activity {_field(text, command, 'id')}".rstrip()
    if op in ("time.sleep", "time.after"):
        ns = _field(integer, command, "ns")
        return f"timer {format_duration(ns / 1e9)}" if isinstance(ns, int) else "timer"
    if op in ("process.exec", "process.spawn", "workflow.exec"):
        return "child"
    if op == "process.send":
        return f"signal_external {_field(text, command, 'topic')}".rstrip()
    if op == "workflow.version":
        return "marker"
    if op == "workflow.attrs":
        return "upsert_search_attributes"
    if op == "workflow.continue_as_new":
        return "continue_as_new"
    return None


def _field(read: Any, command: Any, key: str) -> Any:
    """``read(command, key)`` (values.text / integer), or "" when the field is missing or of another type."""
    try:
        return read(command, key, key)
    except ShimError:
        return ""


def _same(history_line: str, new_line: str) -> bool:
    kind = history_line.split(" ", 1)[0]
    if kind in ("activity", "timer", "signal_external") and new_line.split(" ", 1)[0] == kind \
            and new_line != kind:
        return history_line == new_line
    return kind == new_line.split(" ", 1)[0]


def _divergence(history: WorkflowHistory, recorded: list[tuple[str, str]]) -> tuple[str, str | None] | None:
    """``(message, where)`` of the first command the new code issued differently from the history."""
    expected = [(event.event_id, line) for event in history.events
                for line in commands_of([event]) if line.split(" ", 1)[0] in _LUA_COMMANDS]
    for index, (new_line, where) in enumerate(recorded):
        if index >= len(expected):
            return (f"the new code issues `{new_line}`, which the history does not have (it ends its commands "
                    f"after {len(expected)})", where)
        event_id, old_line = expected[index]
        if not _same(old_line, new_line):
            return (f"history event {event_id} is `{old_line}`, but the new code issues `{new_line}`", where)
    if len(recorded) < len(expected):
        event_id, old_line = expected[len(recorded)]
        last = recorded[-1][1] if recorded else None
        return (f"history event {event_id} is `{old_line}`, but the new code issues no such command (it returned "
                "or waits for something else)" + (f"; its last command came from {last}" if last else ""), last)
    return None


async def replay_histories(source: RevisionSource, histories: Sequence[LoadedHistory], *,
                           prepared: tuple[_CommandRecorder, dict[bool, Replayer]] | None = None) -> list[ReplayResult]:
    """Replay each history on the current revision of its type; one verdict per history, in order.

    ``prepared``: the recorder and replayers of :func:`_prepare`, reused (a ``--jobs`` worker builds them once).
    Consecutive histories for the same replayer go through one replay worker of the SDK, one after another
    (a worker per history costs ~1 ms more, and more again when another process holds the other core).
    """
    recorder, replayers = prepared or _prepare(source)
    results: list[ReplayResult | None] = [_unreplayable(source, loaded) for loaded in histories]
    replayable = [(index, loaded) for index, loaded in enumerate(histories) if results[index] is None]
    with _task_failures() as task_errors:
        for record_pin, run in itertools.groupby(replayable, key=lambda item: _records_pin(_history(item[1]))):
            queued = list(run)
            async with replayers[record_pin].workflow_replay_iterator(_fed(queued, recorder, task_errors)) as outcomes:
                verdicts = [(index, _verdict(loaded, outcome, recorder, task_errors))
                            async for (index, loaded), outcome in _paired(queued, outcomes)]
            for index, verdict in verdicts:
                results[index] = verdict
    verdicts_made = [result for result in results if result is not None]
    if len(verdicts_made) != len(histories):  # the SDK yields one outcome per history it was given
        raise RuntimeError(f"{len(histories) - len(verdicts_made)} histories were not replayed")
    return verdicts_made


async def _fed(queued: list[tuple[int, LoadedHistory]], recorder: _CommandRecorder,
               task_errors: list[BaseException]) -> AsyncIterator[WorkflowHistory]:
    """The queued histories for the SDK's replay worker, each with a fresh record (the SDK asks for the next one
    once the previous one's outcome is taken, and its verdict made)."""
    for _, loaded in queued:
        recorder.commands = []
        task_errors.clear()
        yield _history(loaded)


async def _paired(queued: list[tuple[int, LoadedHistory]],
                  outcomes: AsyncIterator[WorkflowReplayResult]) -> AsyncIterator[tuple[tuple[int, LoadedHistory],
                                                                                          WorkflowReplayResult]]:
    """Each queued history with its outcome, as the SDK yields them (one per history, in order)."""
    position = 0
    async for outcome in outcomes:
        yield queued[position], outcome
        position += 1


def _history(loaded: LoadedHistory) -> WorkflowHistory:
    assert loaded.history is not None  # only readable histories are replayed (_unreplayable)
    return loaded.history


def _unreplayable(source: RevisionSource, loaded: LoadedHistory) -> ReplayResult | None:
    """The verdict of a history that cannot be replayed (unreadable, or no entry serves its type); None: replay it."""
    if loaded.history is None:
        return ReplayResult(loaded.name, "error", message=loaded.error or "unreadable")
    workflow_type = loaded.workflow_type
    try:
        source.workflow(workflow_type or "")
    except FlowFailure as failure:
        return ReplayResult(loaded.name, "error", workflow_type, len(loaded.history.events),
                            f"no workflow entry serves type {workflow_type!r}: {failure.message}")
    return None


def _verdict(loaded: LoadedHistory, outcome: WorkflowReplayResult, recorder: _CommandRecorder,
             task_errors: list[BaseException]) -> ReplayResult:
    """One replayed history's verdict (``task_errors``: where the workflow task failures of its replay arrived)."""
    history = _history(loaded)
    workflow_type, events = loaded.workflow_type, len(history.events)
    task_error = _task_error(task_errors[-1]) if task_errors else None
    if outcome.replay_failure is None:
        note, where = task_error or ("", None)
        if note:
            note = f"its workflow task fails on this code too, as in the history (a stuck run): {note}"
        return ReplayResult(loaded.name, "ok", workflow_type, events, note, where)
    failure_text = str(outcome.replay_failure)
    nondeterministic = "nondetermin" in failure_text.lower()
    found = _divergence(history, recorder.commands) if nondeterministic else None
    if found is not None:
        return ReplayResult(loaded.name, "diverged", workflow_type, events, *found)
    if task_error is not None and not nondeterministic:
        return ReplayResult(loaded.name, "error", workflow_type, events, *task_error)  # the Lua error itself
    return ReplayResult(loaded.name, "diverged" if nondeterministic else "error", workflow_type, events,
                        _first_line(failure_text), recorder.commands[-1][1] if recorder.commands else None)


class _Collect(logging.Handler):
    """Keeps the exception of each log record (the SDK's failed activations) instead of printing it."""

    def __init__(self, into: list[BaseException]) -> None:
        super().__init__()
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.into.append(record.exc_info[1])


@contextlib.contextmanager
def _task_failures() -> Iterator[list[BaseException]]:
    """While replaying: the errors of failed workflow activations, collected, not logged with a traceback."""
    errors: list[BaseException] = []
    logger = logging.getLogger(_ACTIVATION_LOGGER)
    handler, propagate = _Collect(errors), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield errors
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _task_error(error: BaseException) -> tuple[str, str | None]:
    """``(message, where)`` of a failed activation: the Lua message's first line and its file:line."""
    first = _first_line(str(error)) if str(error).strip() else type(error).__name__
    found = _LUA_WHERE.match(first)
    return (first[found.end():], found["where"]) if found else (first, None)


@functools.cache
def _quiet_runtime() -> Runtime:
    """A Temporal runtime whose core logs errors only: a failing task's warning is in the verdict already."""
    return Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(filter=TelemetryFilter(core_level="ERROR",
                                                                                          other_level="ERROR"))))


def _prepare(source: RevisionSource) -> tuple[_CommandRecorder, dict[bool, Replayer]]:
    """The command recorder and the two replayers (with and without recording the pin) for ``source``."""
    recorder = _CommandRecorder()
    # A run started without flowctl's memo had its pin recorded by a pinned worker (an upsert in
    # its history) and not by an auto_upgrade one: the replay must issue the same command.
    replayers = {
        record_pin: Replayer(workflows=[make_workflow_class(source, follow_pins=False, on_run=recorder.attach,
                                                            record_pin=record_pin, limits=_REPLAY_LIMITS)],
                             workflow_runner=UnsandboxedWorkflowRunner(), interceptors=[ContextInterceptor()],
                             runtime=_quiet_runtime())
        for record_pin in (False, True)
    }
    return recorder, replayers


def _records_pin(history: WorkflowHistory) -> bool:
    """Whether the worker that wrote the history upserted the revision memo itself."""
    return any(event.event_type == EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED
               and REVISION_MEMO in event.workflow_properties_modified_event_attributes.upserted_memo.fields
               for event in history.events)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "replay failed"


async def replay_main(*, histories_dir: Path | None = None, workflow_ids: Sequence[str] = (),
                      query: str | None = None, limit: int = 100, entries: Path | None = None,
                      registry_url: str | None = None, client_id: str | None = None,
                      jobs: int | None = None) -> ReplayReport:
    """``flowctl replay``: gather the histories, replay them on the registry's revisions or on ``entries``.

    ``jobs``: replay on this many worker processes (default: the CPU count; 1: in this process).
    """
    jobs = jobs or os.cpu_count() or 1
    _one_runtime_thread()
    if entries is not None:
        source = ProjectRevisionSource.from_paths([entries])
        return ReplayReport(await _replay_on(source, histories_dir, workflow_ids, query, limit, client_id,
                                             _Pool(jobs, source.entries(), None)))
    from registry.open_store import open_store

    with open_store(registry_url, create=False) as store:
        return ReplayReport(await _replay_on(StoreRevisionSource(store), histories_dir, workflow_ids, query, limit,
                                             client_id, _Pool(jobs, None, registry_url)))


async def _replay_on(source: StoreRevisionSource, histories_dir: Path | None, workflow_ids: Sequence[str],
                     query: str | None, limit: int, client_id: str | None, pool: _Pool) -> list[ReplayResult]:
    histories: list[Path | LoadedHistory] = []
    if histories_dir is not None:
        # with several jobs each worker process reads its own files
        files = history_files(histories_dir)
        histories.extend(files if pool.jobs > 1 else [load_history_file(path) for path in files])
    if workflow_ids or query:
        from runner.client.connect import connect
        from runner.client.executions import client_entry

        client = await connect(client_entry(source, client_id))
        for workflow_id in workflow_ids:
            histories.extend(await fetch_histories(client, workflow_id=workflow_id))
        if query:
            histories.extend(await fetch_histories(client, query=query, limit=limit))
    if pool.jobs > 1 and len(histories) > 1:
        return await pool.replay(source, histories)
    return await replay_histories(source, [_loaded(item) for item in histories])


# ---------------------------------------------------------------------- on several processes (--jobs N)


def _loaded(item: Path | LoadedHistory) -> LoadedHistory:
    return load_history_file(item) if isinstance(item, Path) else item


#: histories per extra process at least (fewer: replayed here, sooner than a process starts)
_PER_PROCESS = 64
#: histories per batch at most; batches shrink towards the end so that every process finishes together
_BATCH = 16


def _batches(histories: Sequence[Path | LoadedHistory], jobs: int) -> list[list[Path | LoadedHistory]]:
    """``histories`` cut in order into batches of up to ``_BATCH``, each at most an eighth of what is left
    per process (the last ones single histories: no process waits long for another's last batch)."""
    batches, start = [], 0
    while start < len(histories):
        size = max(1, min(_BATCH, (len(histories) - start) // (jobs * 8)))
        batches.append(list(histories[start:start + size]))
        start += size
    return batches


def _start_method() -> str:
    """``fork`` when this process has a single thread (Linux: /proc/self/task), else ``spawn``.

    A forked child starts at once with every module already imported (a spawned one imports them again:
    ~0.5 s). Forking is safe only before any other thread exists: the Temporal runtime's threads (a client
    connection or a replayer: :func:`_prepare`), a driver's or the pool's own manager thread could hold a
    lock that the child would inherit held. So the pool forks its processes first, before this process
    builds a replayer, and on any other platform, or with a thread running (``--workflow-id``/``--query``
    connected a client; a test's process), it spawns them as before.
    """
    return "fork" if "fork" in multiprocessing.get_all_start_methods() and _single_threaded() else "spawn"


def _single_threaded() -> bool:
    """Whether this process runs a single thread (known on Linux only: /proc/self/task)."""
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def _one_runtime_thread() -> None:
    """One worker thread for this command's Temporal runtimes: tokio reads ``TOKIO_WORKER_THREADS`` when it builds
    one (a value already set wins). Replaying waits for no network, and with ``--jobs`` each process's extra thread
    only takes a core from the others. Set only while this process has a single thread (changing the environment
    while another thread reads it is unsafe), so ``flowctl replay`` run from a shell, not a caller's process."""
    if _single_threaded():
        os.environ.setdefault("TOKIO_WORKER_THREADS", "1")


@dataclass(frozen=True)
class _Pool:
    """This process and ``jobs - 1`` more (forked when safe, else spawned), each with its own revision source
    (the tree's revisions or the registry), its replayers built once."""

    jobs: int
    revisions: list[Revision] | None
    registry_url: str | None

    async def replay(self, source: RevisionSource, histories: Sequence[Path | LoadedHistory]) -> list[ReplayResult]:
        """Every history's verdict, in order. Small batches, each taken by the first process free: this one
        starts at once, the others when they have started, and all finish together."""
        batches = deque(enumerate(_batches(histories, self.jobs)))
        done: dict[int, list[ReplayResult]] = {}
        loop = asyncio.get_running_loop()

        async def here(prepared: tuple[_CommandRecorder, dict[bool, Replayer]]) -> None:
            while batches:
                index, batch = batches.popleft()
                done[index] = await replay_histories(source, [_loaded(item) for item in batch], prepared=prepared)

        async def there(pool: ProcessPoolExecutor) -> None:
            while batches:
                index, batch = batches.popleft()
                done[index] = await loop.run_in_executor(pool, _worker_replay, batch)

        # a spawned process takes about half a second to start: one more for every _PER_PROCESS histories at most
        others = min(self.jobs - 1, len(batches) - 1, len(histories) // _PER_PROCESS)
        if others < 1:
            await here(_prepare(source))
            return [result for index in sorted(done) for result in done[index]]
        method = _start_method()
        with ProcessPoolExecutor(others, mp_context=multiprocessing.get_context(method), initializer=_worker_start,
                                 initargs=(self.revisions, self.registry_url, method == "fork")) as pool:
            if method == "fork":
                pool.submit(os.getpid)  # forks every process now, while this one has no other thread
            prepared = _prepare(source)  # after the fork: the Temporal runtime's threads start here
            # two batches in flight per process (the next one waits there while this loop is busy replaying),
            # sent before this process takes its first one
            remote = asyncio.gather(*(there(pool) for _ in range(2 * others)), return_exceptions=True)
            local = asyncio.ensure_future(here(prepared))
            try:
                failed = [outcome for outcome in await remote if outcome is not None]
            finally:
                # a failure or Ctrl-C (cancelled): this process finishes its batch, never left running; a replay
                # cancelled by asyncio.run's teardown, alongside the SDK's own tasks, never ends
                batches.clear()
                await local
        if failed and isinstance(failed[0], BrokenProcessPool):
            raise FlowError("a replay process stopped before it finished (killed, or out of memory?)",
                            hint="rerun with --jobs 1 to replay in one process and see which history stops it")
        if failed:
            raise failed[0]
        return [result for index in sorted(done) for result in done[index]]


#: a worker process's revision source, recorder and replayers and event loop, built once (_worker_start)
_WORKER: dict[str, Any] = {}


def _worker_start(revisions: list[Revision] | None, registry_url: str | None, forked: bool = False) -> None:
    if forked and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        # not asyncio.run's handler (it would cancel the parent's task, copied here): Ctrl-C stops this process
        # as it stops a spawned one (KeyboardInterrupt), and no signal wakes the parent's copied event loop
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.set_wakeup_fd(-1)
    source: RevisionSource
    if revisions is not None:
        source = ProjectRevisionSource(revisions)
    else:
        from registry.open_store import open_store

        source = StoreRevisionSource(open_store(registry_url, create=False))  # open for the process's life
    _WORKER.update(source=source, prepared=_prepare(source), loop=asyncio.new_event_loop())


def _worker_replay(batch: list[Path | LoadedHistory]) -> list[ReplayResult]:
    replaying = replay_histories(_WORKER["source"], [_loaded(item) for item in batch], prepared=_WORKER["prepared"])
    results: list[ReplayResult] = _WORKER["loop"].run_until_complete(replaying)
    return results

"""The replay gate, runner half: replay the runs an apply would move onto new code, before it does.

For each target (``registry.gate``: a workflow entry whose runs an ``auto_upgrade`` worker
would move to the new revision) the gate connects with the client its runs live on, lists
its open runs newest first (at most ``limit`` over all targets) and a few recently closed
ones, fetches their histories and replays each on the revisions *after* the apply, in fresh
interpreters (``runner.replay.replay_histories``). A run the new code cannot replay becomes
a :class:`~registry.gate.RunDivergence`: the history event, the command the new code issues
instead, its Lua file:line, and the ``workflow.version`` call that fixes it.

Closed runs are a sample of the later steps that open runs have not reached yet: a run
standing at such a step when the change lands would fail the same way. A run that fails on
the registry's current revision as well is reported but refuses nothing: this apply does
not strand it (it is stuck already, e.g. after an apply with ``--no-gate``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.service import RPCError, RPCStatusCode

from registry.errors import FlowError
from registry.gate import GateRequest, GateTarget, GateVerdict, RunDivergence, WorkflowRuns
from registry.revision import Revision
from runner.client.connect import connect
from runner.replay import LoadedHistory, ReplayResult, replay_histories
from runner.revision_source import ProjectRevisionSource

__all__ = ["CLOSED_SAMPLE", "check_runs", "quiet_replay_warnings"]

#: Recently closed runs replayed per workflow entry, besides its open ones.
CLOSED_SAMPLE = 5
#: Histories fetched at once.
FETCH_CONCURRENCY = 16
#: What to do when the gate cannot reach the runs.
UNREACHABLE_HINT = ("start Temporal or fix the temporal.client entry; to apply without the gate: "
                    "`flowctl apply --no-gate --reason TEXT` (the reason is recorded in `flowctl registry history`)")

_EVENT = re.compile(r"history event (\d+) is `([^`]*)`")
_ISSUED = re.compile(r"the new code issues `([^`]*)`")


@dataclass(frozen=True)
class _Run:
    """A run the gate replays."""

    target: GateTarget
    workflow_id: str
    run_id: str
    started: datetime
    open: bool


async def check_runs(request: GateRequest, *, limit: int = 100, closed: int = CLOSED_SAMPLE,
                     clients: Mapping[str, Client] | None = None) -> GateVerdict:
    """Replay the targets' runs on ``request.after``; ``clients``: connections by client entry ID (else connect)."""
    started = time.perf_counter()
    connections = _Connections(request, clients or {})
    try:
        runs = await _list_runs(request.targets, connections, limit=limit, closed=closed)
        histories = await _fetch_histories(runs, connections)
    except FlowError as exc:
        return GateVerdict(error=exc.message, hint=exc.hint or UNREACHABLE_HINT, seconds=time.perf_counter() - started)
    readable = [(run, history) for run, history in histories if history is not None]
    results = await replay_histories(_after_source(request), [LoadedHistory(run.workflow_id, history)
                                                              for run, history in readable])
    failing = [(run, history, result) for (run, history), result in zip(readable, results, strict=True)
               if not result.ok]
    already = await _failing_now(request, failing)
    order = {target.entry_id: index for index, target in enumerate(request.targets)}
    divergences = tuple(sorted((_divergence(request, run, history, result, already_failing=index in already)
                                for index, (run, history, result) in enumerate(failing)),
                               key=lambda divergence: order[divergence.entry_id]))
    return GateVerdict(workflows=_counts(request.targets, histories), divergences=divergences,
                       seconds=time.perf_counter() - started)


def quiet_replay_warnings() -> None:
    """The SDK core warns about each workflow task a replay fails; the gate reports them itself.

    Only when this process has no SDK runtime yet (a command line, not a worker or a test).
    """
    with contextlib.suppress(RuntimeError):
        Runtime.set_default(Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(
            filter=TelemetryFilter(core_level="ERROR", other_level="ERROR")))), error_if_already_set=True)


# ---------------------------------------------------------------------- gathering


class _Connections:
    """One client per temporal.client entry, connected on first use."""

    def __init__(self, request: GateRequest, given: Mapping[str, Client]) -> None:
        self.request = request
        self.clients = dict(given)

    async def get(self, target: GateTarget) -> Client:
        client = self.clients.get(target.client_id)
        if client is None:
            entry = self.request.current.get(target.client_id) or self.request.after.get(target.client_id)
            if entry is None:
                raise FlowError(f"{target.entry_id}: its worker's client {target.client_id or '(none)'} is not "
                                "an entry", hint="apply the temporal.client entry its temporal.worker names")
            try:
                client = await connect(entry)
            except FlowError as exc:
                raise FlowError(f"the replay gate cannot check the runs of {target.entry_id}: {exc.message}",
                                hint=UNREACHABLE_HINT) from None
            self.clients[target.client_id] = client
        return client


async def _list_runs(targets: Sequence[GateTarget], connections: _Connections, *, limit: int,
                     closed: int) -> list[_Run]:
    """The newest ``limit`` open runs over all targets, then up to ``closed`` closed runs of each."""
    open_runs: list[_Run] = []
    closed_runs: list[_Run] = []
    for target in targets:
        client = await connections.get(target)
        open_runs += await _listed(client, target, "ExecutionStatus = 'Running'", limit, is_open=True)
        closed_runs += await _listed(client, target, "ExecutionStatus != 'Running'", closed, is_open=False)
    open_runs.sort(key=lambda run: run.started, reverse=True)
    return open_runs[:limit] + closed_runs


async def _listed(client: Client, target: GateTarget, status: str, limit: int, *, is_open: bool) -> list[_Run]:
    if limit <= 0:
        return []
    types = " OR ".join(f"WorkflowType = {_quoted(t)}" for t in target.workflow_types)
    query = f"({types}) AND {status}"
    found = []
    try:
        async for execution in client.list_workflows(query, limit=limit):
            found.append(_Run(target, execution.id, execution.run_id, execution.start_time, is_open))
    except RPCError as exc:
        raise FlowError(f"the replay gate cannot list the runs of {target.entry_id} in namespace "
                        f"{client.namespace!r}: {exc.message}", hint=UNREACHABLE_HINT) from None
    return found


def _quoted(text: str) -> str:
    """A string literal of Temporal's visibility query language."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


async def _fetch_histories(runs: Sequence[_Run],
                           connections: _Connections) -> list[tuple[_Run, WorkflowHistory | None]]:
    """Each run's history (None: it is gone, e.g. deleted since it was listed), in order."""
    slots = asyncio.Semaphore(FETCH_CONCURRENCY)

    async def fetch(run: _Run) -> tuple[_Run, WorkflowHistory | None]:
        client = await connections.get(run.target)
        async with slots:
            try:
                return run, await client.get_workflow_handle(run.workflow_id, run_id=run.run_id).fetch_history()
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND:
                    return run, None
                raise FlowError(f"the replay gate cannot fetch the history of {run.workflow_id} ({run.run_id}) "
                                f"from namespace {client.namespace!r}: {exc.message}", hint=UNREACHABLE_HINT) from None

    return list(await asyncio.gather(*(fetch(run) for run in runs)))


def _counts(targets: Sequence[GateTarget],
            histories: Sequence[tuple[_Run, WorkflowHistory | None]]) -> tuple[WorkflowRuns, ...]:
    counts = []
    for target in targets:
        mine = [(run, history) for run, history in histories if run.target is target]
        counts.append(WorkflowRuns(target, open_runs=sum(run.open and h is not None for run, h in mine),
                                   closed_runs=sum(not run.open and h is not None for run, h in mine),
                                   gone=sum(h is None for _, h in mine)))
    return tuple(counts)


# ---------------------------------------------------------------------- replaying


def _after_source(request: GateRequest) -> ProjectRevisionSource:
    """The revisions after the apply; workflow types the registry's revisions had stay known (a rename)."""
    source = ProjectRevisionSource(request.current)
    for entry_id, revision in request.after.items():
        now = request.current.get(entry_id)
        if now is None or now.digest != revision.digest:
            source.add(revision)
    return source


async def _failing_now(request: GateRequest, failing: Sequence[tuple[_Run, WorkflowHistory, ReplayResult]]) -> set[int]:
    """Indexes of the failing runs that fail on the registry's current revision too (runs it executes now)."""
    candidates = [index for index, (run, _, _) in enumerate(failing) if run.target.upgrading_now]
    if not candidates:
        return set()
    results = await replay_histories(ProjectRevisionSource(request.current),
                                     [LoadedHistory(failing[i][0].workflow_id, failing[i][1]) for i in candidates])
    return {index for index, result in zip(candidates, results, strict=True) if not result.ok}


def _divergence(request: GateRequest, run: _Run, history: WorkflowHistory, result: ReplayResult, *,
                already_failing: bool) -> RunDivergence:
    """What the replay found, parsed into the event, the two commands and the fix."""
    event = _EVENT.search(result.message)
    issued = _ISSUED.search(result.message)
    event_id = int(event.group(1)) if event else None
    divergence = RunDivergence(
        entry_id=run.target.entry_id, workflow_id=run.workflow_id, run_id=run.run_id, open=run.open,
        status="diverged" if result.status == "diverged" else "failed", message=result.message,
        event_id=event_id, history_command=event.group(2) if event else None,
        new_command=issued.group(1) if issued else None, where=result.where, already_failing=already_failing)
    if divergence.status != "diverged":
        return divergence
    patch = _patch_id(_event(history, event_id))
    old = request.current.get(run.target.entry_id)
    if patch is None:
        fix, hint = _wrapped_change(divergence, old)
        return dataclasses.replace(divergence, fix=fix, fix_hint=hint)
    fix, hint = _kept_version(patch, old, run.target.entry_id)
    return dataclasses.replace(divergence, history_command=f"marker {patch} (workflow.version)", fix=fix,
                               fix_hint=hint)


def _event(history: WorkflowHistory, event_id: int | None) -> HistoryEvent | None:
    if event_id is None:
        return None
    return next((event for event in history.events if event.event_id == event_id), None)


def _patch_id(event: HistoryEvent | None) -> str | None:
    """The ``change_id@vN`` of a ``workflow.version`` marker (a Temporal patch marker), else None."""
    if event is None or event.event_type != EventType.EVENT_TYPE_MARKER_RECORDED:
        return None
    for payloads in event.marker_recorded_event_attributes.details.values():
        for payload in payloads.payloads:
            with contextlib.suppress(ValueError, UnicodeDecodeError):
                data = json.loads(payload.data)
                if isinstance(data, dict) and isinstance(data.get("id"), str) and "@v" in data["id"]:
                    return str(data["id"])
    return None


def _kept_version(patch: str, old: Revision | None, entry_id: str) -> tuple[str, str]:
    """A removed ``workflow.version`` call whose marker the run recorded: keep the call (as it was)."""
    change_id, _, recorded = patch.rpartition("@v")
    version = int(recorded) if recorded.lstrip("-").isdigit() else 2
    call = re.compile(r"workflow\.version\(\s*[\"']" + re.escape(change_id) + r"[\"']\s*,\s*(-?\d+)\s*,\s*(-?\d+)\s*\)")
    for revision in (old, *(old.libraries.values() if old else ())):
        for number, line in enumerate((revision.source or "").splitlines() if revision else (), start=1):
            found = call.search(line)
            if found and revision is not None:
                return (f'workflow.version("{change_id}", {found.group(1)}, {found.group(2)})',
                        f"keep this call where the registry's revision has it ({revision.source_name}:{number}): "
                        f"this run recorded version {version} of {change_id!r}; remove it only when "
                        f"`flowctl versions {entry_id}` shows no open run on it")
    # a run that took version N recorded its marker only because min < N: keep min below it
    return (f'workflow.version("{change_id}", {version - 1}, {version})',
            f"keep a call to it where the old code had it: this run recorded version {version} of {change_id!r}; "
            f"remove it only when `flowctl versions {entry_id}` shows no open run on it")


def _wrapped_change(divergence: RunDivergence, old: Revision | None) -> tuple[str, str]:
    """A changed, added or removed command: the old and the new code in two ``workflow.version`` branches."""
    name = divergence.entry_id.split(":", 1)[-1]
    change_id = f"{name}-{old.digest[:8]}" if old else f"{name}-v2"
    old_code = (f"it issued `{divergence.history_command}`, history event {divergence.event_id}"
                if divergence.event_id else "no command there")
    new_code = f"it issues `{divergence.new_command}`" if divergence.new_command else "no command there"
    fix = "\n".join((f'if workflow.version("{change_id}", 1, 2) == 1 then', f"    -- the old code ({old_code})",
                     "else", f"    -- the new code ({new_code})", "end"))
    where = f"at {divergence.where}: " if divergence.where else ""
    return fix, (f"{where}runs that recorded the old commands take branch 1, new runs branch 2; a step the change "
                 "only adds goes alone in the else branch (`if workflow.version(...) == 2 then <new step> end`)")

"""Workflow executions seen from outside: start one and wait (``flowctl run``), describe one.

Both connect with a ``temporal.client`` entry of the registry: ``run`` uses the client of
the workflow's worker; ``describe`` the one named by ``--client``, or the registry's only
client entry.

A running workflow whose workflow task keeps failing (a Lua ``error("...")``, a
nondeterminism error) looks like any running workflow to Temporal: it is retried forever.
``workflow_task_failure`` reads why (the pending task's attempt, the last recorded
WorkflowTaskFailed event, read backwards from the end of the history), and ``describe``,
``run --wait`` and ``flowctl list`` call such a run **stuck**.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC
from typing import Any

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import PendingActivityState, WorkflowTaskFailedCause
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryReverseRequest
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.service import RPCError, RPCStatusCode

from registry.errors import FlowError
from registry.revision import Revision
from runner.client.connect import connect, namespace_missing, rpc_error
from runner.client.start import NO_INPUT, check_start_input, start_workflow, workflow_revision
from runner.revision_source import StoreRevisionSource, require_entry
from runner.sandbox.failures import FlowFailure
from runner.temporal.failures import failure_from_temporal
from runner.temporal.memo import REVISION_MEMO

__all__ = ["DEFAULT_STUCK_AFTER", "Described", "RunOutcome", "StuckWatch", "TaskFailure", "client_entry",
           "control_execution", "describe_execution", "run_entry", "workflow_client", "workflow_task_failure"]

#: ``run --wait --stuck-after``: failed workflow-task attempts before the warning. One, because that
#: is all Temporal shows within 10 s: the first failure is reported at once and retried at once, but
#: the SDK does not report a retry's failure, so each later attempt ends by the workflow task
#: timeout (10 s by default), then with a growing backoff (measured on the dev server: failures
#: 1, 2, 3, 4 seen after 0.2 s, 10 s, 20 s, 35 s).
DEFAULT_STUCK_AFTER = 1
#: While a run stays stuck, ``run --wait`` warns again when more attempts failed, at most this often (s).
REPEAT_WARNING_EVERY = 60.0
#: Seconds between two looks at a run ``run --wait`` waits for.
CHECK_EVERY = 1.0
#: Task failures flowctl causes on purpose (an auto_upgrade apply, ``flowctl upgrade``): the next
#: attempt replays the run on its new revision, so one such failure is not a stuck run. (They happen
#: on cached runs, and the dev server retries those as a fresh attempt 1; this covers a retry that counts.)
_DELIBERATE_FAILURES = frozenset({"RevisionChanged"})
#: ``file.lua:12`` at the start of a Lua message, or in a traceback line (``\tfile.lua:12: in ...``).
_LUA_WHERE = re.compile(r"^\s*(?P<where>[^\s\[:][^:\n]*\.lua:\d+):", re.MULTILINE)
#: Reverse-history pages read at most to find a run's last workflow task event.
_MAX_PAGES = 5


@dataclass(frozen=True)
class TaskFailure:
    """Why a running workflow does not progress: its workflow task failed and Temporal keeps retrying it."""

    #: the attempt Temporal is on now
    attempt: int
    #: failed attempts so far (flowctl's own deliberate replay not counted)
    failures: int
    #: the Lua message (its first line, without the file:line), or Temporal's
    message: str
    #: the Lua ``file:line`` of the error, when the failure came from Lua
    where: str | None
    #: Temporal's WorkflowTaskFailedCause, e.g. ``workflow_worker_unhandled_failure``, ``non_deterministic_error``
    cause: str
    nondeterminism: bool
    #: when the failure Temporal recorded happened (the first of the streak: later attempts are not recorded)
    failed_at: str | None = None
    #: the rest of the failure message (the Lua traceback)
    traceback: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class RunOutcome:
    """A started (and, when waited for, finished) workflow run."""

    workflow_id: str
    run_id: str | None
    workflow_type: str
    task_queue: str
    revision: str
    waited: bool = False
    result: Any = None
    failure: FlowFailure | None = None
    #: ``run --wait --stuck-timeout``: the run was still stuck when the wait gave up (it stays open)
    stuck: TaskFailure | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None and self.stuck is None

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"workflow_id": self.workflow_id, "run_id": self.run_id,
                                "workflow_type": self.workflow_type, "task_queue": self.task_queue,
                                "revision": self.revision}
        if self.waited and self.stuck is not None:
            body["status"] = "stuck"
            body["task_failure"] = self.stuck.to_dict()
        elif self.waited:
            body["status"] = "completed" if self.ok else "failed"
            if self.failure is None:
                body["result"] = self.result
            else:
                body["error"] = _failure_dict(self.failure)
        return body


@dataclass(frozen=True)
class Described:
    """What ``flowctl describe`` shows of one execution."""

    workflow_id: str
    run_id: str
    workflow_type: str
    status: str
    task_queue: str
    start_time: str | None
    close_time: str | None
    history_length: int
    revision: str | None
    memo: dict[str, Any] = field(default_factory=dict)
    pending_activities: list[dict[str, Any]] = field(default_factory=list)
    result: Any = None
    failure: dict[str, Any] | None = None
    #: set while the run is stuck (running, its workflow task failing)
    task_failure: TaskFailure | None = None
    #: the revision in the run's memo when ``flowctl upgrade`` moved the run to ``revision``
    upgraded_from: str | None = None
    #: what the worker's watchdog stopped (the run itself, or an activity attempt): each record, with the
    #: failure message the run (or attempt) fails with (docs/sandbox.md, "The watchdog")
    quarantined: list[dict[str, Any]] = field(default_factory=list)

    @property
    def stuck(self) -> bool:
        return self.task_failure is not None

    def to_dict(self) -> dict[str, Any]:
        body = {k: v for k, v in self.__dict__.items() if k != "task_failure"}
        body["stuck"] = self.stuck
        body["task_failure"] = self.task_failure.to_dict() if self.task_failure is not None else None
        return body


class StuckWatch:
    """``run --wait``: when to warn that the run is stuck, and when to stop waiting for it."""

    def __init__(self, stuck_after: int = DEFAULT_STUCK_AFTER, stuck_timeout: float | None = None) -> None:
        self.stuck_after = stuck_after
        self.stuck_timeout = stuck_timeout
        self._since: float | None = None
        self._warned_at = float("-inf")
        self._warned_failures = 0

    def observe(self, failure: TaskFailure | None, now: float) -> tuple[bool, bool]:
        """``(warn, give_up)`` for what a look at the run found at monotonic time ``now``."""
        if failure is None or failure.failures < self.stuck_after:
            self._since, self._warned_failures = None, 0  # progressing (again): a new streak warns anew
            return False, False
        if self._since is None:
            self._since = now
            warn = True
        else:
            warn = failure.failures > self._warned_failures and now - self._warned_at >= REPEAT_WARNING_EVERY
        if warn:
            self._warned_at, self._warned_failures = now, failure.failures
        return warn, self.stuck_timeout is not None and now - self._since >= self.stuck_timeout


def client_entry(source: StoreRevisionSource, client_id: str | None = None) -> Revision:
    """The named temporal.client entry, or the only one in the registry."""
    if client_id:
        found = require_entry(source.entry, client_id, hint="list entries with `flowctl registry list`")
        if found.kind != "temporal.client":
            raise FlowError(f"{client_id} is a {found.kind}, not a temporal.client",
                            hint="pass the ID of a temporal.client entry")
        return found
    clients = source.entries("temporal.client")
    if len(clients) == 1:
        return clients[0]
    if not clients:
        raise FlowError("the registry has no temporal.client entry",
                        hint="apply your entries first: `flowctl apply`")
    listed = ", ".join(c.entry_id for c in clients)
    raise FlowError(f"the registry has several temporal.client entries ({listed})",
                    hint="choose one with --client ID")


def workflow_client(source: StoreRevisionSource, revision: Revision) -> Revision:
    """The temporal.client entry of the worker that serves a workflow entry."""
    worker_id = revision.worker_id
    try:
        worker = source.entry(worker_id or "")
        return source.entry(worker.ref(worker.data.get("client")))
    except FlowFailure as failure:
        raise FlowError(f"{revision.entry_id}: cannot find its worker's client: {failure.message}",
                        hint="apply its temporal.worker and temporal.client entries") from None


async def run_entry(source: StoreRevisionSource, entry_id: str, input: Any = NO_INPUT, *,
                    workflow_id: str | None = None, wait: bool = False,
                    context: Mapping[str, Any] | None = None, client: Client | None = None,
                    options: Mapping[str, Any] | None = None,
                    messages: Sequence[tuple[str, Any]] = (), watch: StuckWatch | None = None,
                    on_stuck: Callable[[str, TaskFailure], None] | None = None) -> RunOutcome:
    """Start the workflow entry ``entry_id`` (pinned to its current revision); with ``wait``, await it.

    While waiting, the run is looked at every second: ``on_stuck(workflow_id, failure)`` is called
    when ``watch`` says to warn, and the wait ends with ``stuck`` set when it says to give up.
    """
    revision = workflow_revision(source, entry_id)
    check_start_input(revision, input)  # refused before connecting: no server needed to say so
    if client is None:
        client = await connect(workflow_client(source, revision))
    try:
        return await _run_entry(client, source, revision, entry_id, input, workflow_id=workflow_id, wait=wait,
                                context=context, options=options, messages=messages, watch=watch, on_stuck=on_stuck)
    except RPCError as exc:
        raise rpc_error(exc, f"cannot {'run' if wait else 'start'} {revision.entry_id}") from None


async def _run_entry(client: Client, source: StoreRevisionSource, revision: Revision, entry_id: str, input: Any, *,
                     workflow_id: str | None, wait: bool, context: Mapping[str, Any] | None,
                     options: Mapping[str, Any] | None, messages: Sequence[tuple[str, Any]],
                     watch: StuckWatch | None, on_stuck: Callable[[str, TaskFailure], None] | None) -> RunOutcome:
    started = await start_workflow(client, source, entry_id, input, workflow_id=workflow_id, context=context,
                                   options=options, messages=messages)
    outcome = RunOutcome(workflow_id=started.workflow_id, run_id=started.run_id,
                         workflow_type=revision.workflow_type, task_queue=started.task_queue,
                         revision=started.revision.digest)
    if not wait:
        return outcome
    result = asyncio.ensure_future(started.handle.result())
    stuck = await _watch(client, started.handle, result, watch or StuckWatch(), on_stuck)
    if stuck is not None:
        return replace(outcome, waited=True, stuck=stuck)
    try:
        return replace(outcome, waited=True, result=await result)
    except WorkflowFailureError as exc:
        return replace(outcome, waited=True, failure=failure_from_temporal(exc.cause or exc))


async def _watch(client: Client, handle: WorkflowHandle[Any, Any], result: asyncio.Future[Any], watch: StuckWatch,
                 on_stuck: Callable[[str, TaskFailure], None] | None) -> TaskFailure | None:
    """Wait for ``result``, looking at the run every second; the failure when ``watch`` gives up on it."""
    while True:
        done, _ = await asyncio.wait({result}, timeout=CHECK_EVERY)
        if done:
            return None
        try:
            failure = await workflow_task_failure(client, await handle.describe())
        except RPCError:
            continue  # a look failed (server busy, restarting): the result call reports real trouble
        warn, give_up = watch.observe(failure, time.monotonic())
        if warn and on_stuck is not None and failure is not None:
            on_stuck(handle.id, failure)
        if give_up:
            result.cancel()
            return failure


async def describe_execution(client: Client, workflow_id: str, run_id: str | None = None, *,
                             upgrades: Mapping[tuple[str, str], str] | None = None,
                             quarantined: Sequence[dict[str, Any]] = ()) -> Described:
    """Status, revision, pending activities, why it is stuck, and (when closed) the result or failure of one execution.

    ``upgrades`` maps ``(workflow_id, run_id)`` to the revision ``flowctl upgrade`` moved a run to
    (the registry's record wins over the run's memo); ``quarantined`` are the watchdog's records of
    the workflow ID (those of the described run are kept).
    """
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    try:
        desc = await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND and not namespace_missing(exc):
            raise FlowError(f"no workflow execution {workflow_id!r} in namespace {client.namespace!r}",
                            hint="check the id (flowctl run prints it) and the client's namespace") from None
        raise rpc_error(exc, f"cannot describe {workflow_id}") from None
    memo = await desc.memo()
    status = desc.status.name.lower() if desc.status is not None else "unknown"
    pending = [await _pending_activity(client, p) for p in desc.raw_description.pending_activities]
    result: Any = None
    failure: dict[str, Any] | None = None
    if desc.status == WorkflowExecutionStatus.COMPLETED:
        result = await handle.result()
    elif desc.status is not None and desc.status != WorkflowExecutionStatus.RUNNING:
        try:
            await handle.result()
        except WorkflowFailureError as exc:
            failure = _failure_dict(failure_from_temporal(exc.cause or exc))
    pinned = memo.get(REVISION_MEMO) if isinstance(memo.get(REVISION_MEMO), str) else None
    moved = (upgrades or {}).get((desc.id, desc.run_id))
    return Described(
        workflow_id=desc.id, run_id=desc.run_id, workflow_type=desc.workflow_type, status=status,
        task_queue=desc.task_queue, start_time=desc.start_time.isoformat() if desc.start_time else None,
        close_time=desc.close_time.isoformat() if desc.close_time else None,
        history_length=desc.history_length, revision=moved or pinned,
        memo={k: v for k, v in memo.items() if k != REVISION_MEMO}, pending_activities=pending, result=result,
        failure=failure, task_failure=await workflow_task_failure(client, desc),
        upgraded_from=pinned if moved and moved != pinned else None,
        quarantined=[record for record in quarantined if record.get("run_id") == desc.run_id])


async def workflow_task_failure(client: Client, desc: WorkflowExecutionDescription) -> TaskFailure | None:
    """Why a running execution's workflow task keeps failing, or None when it is not stuck.

    Stuck means: running, and its pending workflow task is a retry of a failed (or timed out)
    attempt. Only the first failure of a streak is in the history; it is found by reading the
    history backwards to the last workflow task event (one small page, usually).
    """
    raw = desc.raw_description
    if desc.status != WorkflowExecutionStatus.RUNNING or not raw.HasField("pending_workflow_task"):
        return None
    attempt = raw.pending_workflow_task.attempt
    if attempt <= 1:
        return None
    event = await _last_task_event(client, desc.id, desc.run_id)
    failures = attempt - 1
    if event is not None and event.HasField("workflow_task_failed_event_attributes"):
        attributes = event.workflow_task_failed_event_attributes
        text = attributes.failure.message
        deliberate = attributes.failure.application_failure_info.type in _DELIBERATE_FAILURES
        if deliberate:
            failures -= 1
            text = ("the replay on the run's new revision fails too: its error is in the worker's log (Temporal "
                    f"records the first failure of a streak only: {text.splitlines()[0] if text else ''})")
        cause = str(WorkflowTaskFailedCause.Name(attributes.cause)).removeprefix("WORKFLOW_TASK_FAILED_CAUSE_")
        nondeterminism = cause == "NON_DETERMINISTIC_ERROR" or "[TMPRL1100]" in text
    elif event is not None and event.HasField("workflow_task_timed_out_event_attributes"):
        text, cause, nondeterminism = ("the workflow task timed out: its worker stopped, or took longer than the "
                                       "workflow task timeout"), "TIMED_OUT", False
    else:
        text, cause, nondeterminism = "the workflow task failed (no failure recorded in the history)", "UNKNOWN", False
    if failures < 1:
        return None
    first, _, rest = text.partition("\n")
    found = _LUA_WHERE.search(text)
    where = found["where"] if found else None
    message = first.removeprefix(f"{where}: ") if where else first
    return TaskFailure(attempt=attempt, failures=failures, message=message, where=where, cause=cause.lower(),
                       nondeterminism=nondeterminism, traceback=rest.strip(),
                       failed_at=event.event_time.ToDatetime(tzinfo=UTC).isoformat() if event else None)


async def _last_task_event(client: Client, workflow_id: str, run_id: str) -> HistoryEvent | None:
    """The run's newest WorkflowTaskCompleted/Failed/TimedOut event, read from the end of its history."""
    request = GetWorkflowExecutionHistoryReverseRequest(
        namespace=client.namespace, execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id),
        maximum_page_size=50)
    for _ in range(_MAX_PAGES):
        response = await client.workflow_service.get_workflow_execution_history_reverse(request)
        for event in response.history.events:
            if (event.HasField("workflow_task_failed_event_attributes")
                    or event.HasField("workflow_task_timed_out_event_attributes")
                    or event.HasField("workflow_task_completed_event_attributes")):
                return event
        if not response.next_page_token:
            return None
        request.next_page_token = response.next_page_token
    return None


async def _pending_activity(client: Client, pending: Any) -> dict[str, Any]:
    """One pending activity: type, attempt (of how many; 0: unlimited), state, last failure and next retry."""
    last_failure: FlowFailure | None = None
    if pending.HasField("last_failure"):
        last_failure = failure_from_temporal(await client.data_converter.decode_failure(pending.last_failure))
    where = f" at {last_failure.where}" if last_failure is not None and last_failure.where else ""
    next_attempt = (pending.next_attempt_schedule_time.ToDatetime(tzinfo=UTC).isoformat()
                    if pending.HasField("next_attempt_schedule_time") else None)
    return {"activity_id": pending.activity_id, "activity_type": pending.activity_type.name,
            "attempt": pending.attempt, "maximum_attempts": pending.maximum_attempts,
            "state": str(PendingActivityState.Name(pending.state)).removeprefix("PENDING_ACTIVITY_STATE_").lower(),
            "last_failure": f"{last_failure.kind}: {last_failure.message}{where}" if last_failure else None,
            "last_failure_kind": last_failure.kind if last_failure else None, "next_attempt_time": next_attempt}


async def control_execution(client: Client, workflow_id: str, action: str, name: str = "",
                            args: Sequence[Any] = (), *, run_id: str | None = None, reason: str = "") -> Any:
    """``flowctl signal|query|update|cancel|terminate``: one call on a workflow handle."""
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    try:
        if action == "signal":
            await handle.signal(name, args[0] if args else None)
            return None
        if action == "query":
            return await handle.query(name, args=list(args))
        if action == "update":
            return await handle.execute_update(name, args=list(args))
        if action == "cancel":
            await _require_running(handle, "cancel")
            await handle.cancel()
            return None
        if action == "terminate":
            await handle.terminate(reason=reason or "terminated with flowctl")
            return None
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND and not namespace_missing(exc):
            raise FlowError(f"no running workflow {workflow_id!r} in namespace {client.namespace!r}",
                            hint="check the id (flowctl run prints it); closed workflows take no signals") from None
        raise rpc_error(exc, f"cannot {action} {workflow_id}",
                        hint="check the name and arguments") from None
    except WorkflowQueryFailedError as exc:
        raise FlowError(f"query {name!r} failed: {exc.message}",
                        hint="the workflow registers queries with workflow.on_query(name, fn)") from None
    except WorkflowUpdateFailedError as exc:
        failure = failure_from_temporal(exc.cause) if exc.cause else FlowFailure("INTERNAL", str(exc))
        raise FlowError(f"update {name!r} failed: {failure.kind}: {failure.message}",
                        hint="the workflow registers updates with workflow.on_update(name, fn, validator)") from None
    raise FlowError(f"unknown action {action!r}")


async def _require_running(handle: WorkflowHandle[Any, Any], action: str) -> None:
    """A FlowError when the run is closed: Temporal accepts a cancel request for a closed run and ignores it."""
    status = (await handle.describe()).status
    if status is not None and status != WorkflowExecutionStatus.RUNNING:
        raise FlowError(f"cannot {action} {handle.id}: the run is already {status.name.lower()}",
                        hint=f"nothing to {action}: `flowctl describe {handle.id}` shows how it ended")


def _failure_dict(failure: FlowFailure) -> dict[str, Any]:
    return {"kind": failure.kind, "message": failure.message, "retryable": failure.retryable,
            "details": failure.details, "where": failure.where}

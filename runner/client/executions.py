"""Workflow executions seen from outside: start one and wait (``flowctl run``), describe one.

Both connect with a ``temporal.client`` entry of the registry: ``run`` uses the client of
the workflow's worker; ``describe`` the one named by ``--client``, or the registry's only
client entry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.service import RPCError, RPCStatusCode

from registry.errors import FlowError
from registry.revision import Revision
from runner.client.connect import connect
from runner.client.start import NO_INPUT, start_workflow, workflow_revision
from runner.revision_source import StoreRevisionSource, require_entry
from runner.sandbox.failures import FlowFailure
from runner.temporal.failures import failure_from_temporal
from runner.temporal.memo import REVISION_MEMO

__all__ = ["Described", "RunOutcome", "client_entry", "control_execution", "describe_execution", "run_entry",
           "workflow_client"]


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

    @property
    def ok(self) -> bool:
        return self.failure is None

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"workflow_id": self.workflow_id, "run_id": self.run_id,
                                "workflow_type": self.workflow_type, "task_queue": self.task_queue,
                                "revision": self.revision}
        if self.waited:
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

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


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
                    messages: Sequence[tuple[str, Any]] = ()) -> RunOutcome:
    """Start the workflow entry ``entry_id`` (pinned to its current revision); with ``wait``, await it."""
    revision = workflow_revision(source, entry_id)
    if client is None:
        client = await connect(workflow_client(source, revision))
    started = await start_workflow(client, source, entry_id, input, workflow_id=workflow_id, context=context,
                                   options=options, messages=messages)
    outcome = RunOutcome(workflow_id=started.workflow_id, run_id=started.run_id,
                         workflow_type=revision.workflow_type, task_queue=started.task_queue,
                         revision=started.revision.digest)
    if not wait:
        return outcome
    try:
        result = await started.handle.result()
    except WorkflowFailureError as exc:
        return replace(outcome, waited=True, failure=failure_from_temporal(exc.cause or exc))
    return replace(outcome, waited=True, result=result)


async def describe_execution(client: Client, workflow_id: str, run_id: str | None = None) -> Described:
    """Status, revision, pending activities and (when closed) the result or failure of one execution."""
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    try:
        desc = await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise FlowError(f"no workflow execution {workflow_id!r} in namespace {client.namespace!r}",
                            hint="check the id (flowctl run prints it) and the client's namespace") from None
        raise FlowError(f"cannot describe {workflow_id}: {exc.message}",
                        hint="is the server reachable?") from None
    memo = await desc.memo()
    status = desc.status.name.lower() if desc.status is not None else "unknown"
    pending = [{"activity_type": p.activity_type.name, "attempt": p.attempt, "state": _enum_name(p.state),
                "last_failure": p.last_failure.message if p.HasField("last_failure") else None}
               for p in desc.raw_description.pending_activities]
    result: Any = None
    failure: dict[str, Any] | None = None
    if desc.status == WorkflowExecutionStatus.COMPLETED:
        result = await handle.result()
    elif desc.status is not None and desc.status != WorkflowExecutionStatus.RUNNING:
        try:
            await handle.result()
        except WorkflowFailureError as exc:
            failure = _failure_dict(failure_from_temporal(exc.cause or exc))
    return Described(
        workflow_id=desc.id, run_id=desc.run_id, workflow_type=desc.workflow_type, status=status,
        task_queue=desc.task_queue, start_time=desc.start_time.isoformat() if desc.start_time else None,
        close_time=desc.close_time.isoformat() if desc.close_time else None,
        history_length=desc.history_length,
        revision=memo.get(REVISION_MEMO) if isinstance(memo.get(REVISION_MEMO), str) else None,
        memo={k: v for k, v in memo.items() if k != REVISION_MEMO}, pending_activities=pending, result=result,
        failure=failure)


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
            await handle.cancel()
            return None
        if action == "terminate":
            await handle.terminate(reason=reason or "terminated with flowctl")
            return None
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise FlowError(f"no running workflow {workflow_id!r} in namespace {client.namespace!r}",
                            hint="check the id (flowctl run prints it); closed workflows take no signals") from None
        raise FlowError(f"{action} {workflow_id}: {exc.message}", hint="check the name and arguments") from None
    except WorkflowQueryFailedError as exc:
        raise FlowError(f"query {name!r} failed: {exc.message}",
                        hint="the workflow registers queries with workflow.on_query(name, fn)") from None
    except WorkflowUpdateFailedError as exc:
        failure = failure_from_temporal(exc.cause) if exc.cause else FlowFailure("INTERNAL", str(exc))
        raise FlowError(f"update {name!r} failed: {failure.kind}: {failure.message}",
                        hint="the workflow registers updates with workflow.on_update(name, fn, validator)") from None
    raise FlowError(f"unknown action {action!r}")


def _failure_dict(failure: FlowFailure) -> dict[str, Any]:
    return {"kind": failure.kind, "message": failure.message, "retryable": failure.retryable,
            "details": failure.details, "where": failure.where}


def _enum_name(value: Any) -> str:
    from temporalio.api.enums.v1 import PendingActivityState

    return str(PendingActivityState.Name(value)).removeprefix("PENDING_ACTIVITY_STATE_").lower()

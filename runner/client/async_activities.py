"""Activities completed from outside (async completion): ``flowctl activity complete|fail|heartbeat``.

An activity that returned ``activity.pending()`` (Lua) or called
``temporalio.activity.raise_complete_async()`` (``function.python``) stays open, holding no
worker slot, until it is completed, failed or times out. Services that receive a webhook
use the Python API::

    activities = AsyncActivities(client)
    ref = ActivityRef(task_token=token)            # activity.info().task_token (base64)
    ref = ActivityRef(workflow_id="order-1", activity_id="3")   # or by workflow + activity id
    await activities.complete(ref, {"paid": True})
    await activities.fail(ref, "DECLINED", "card declined", retryable=False)
    await activities.heartbeat(ref, {"progress": 3})

A failure reaches the workflow as any activity error does: ``err:kind()`` is ``kind``.

Given a revision source (``flowctl activity`` passes the registry's), ``complete`` of an activity
checks the result against the ``output_schema`` of its entry (current revision; found from the run's
pending activities) and refuses one it breaks before sending anything (ContractError, exit 1). An
activity named by task token is found by the workflow and activity ids inside the token (the
server's protobuf message, read by its wire format: token_ids); a token flowctl cannot read is
completed unchecked.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from dataclasses import dataclass
from typing import Any

from temporalio.client import AsyncActivityHandle, Client
from temporalio.service import RPCError, RPCStatusCode

from registry.contracts import ContractError, entry_violation
from registry.errors import FlowError
from registry.open_store import open_store
from runner.client.connect import connect, namespace_missing, rpc_error
from runner.client.control import registry_client
from runner.client.inputs import read_json
from runner.revision_source import RevisionSource, StoreRevisionSource
from runner.sandbox.failures import FlowFailure
from runner.temporal.failures import KIND_RE, to_application_error

__all__ = ["ACTIVITY_ACTIONS", "ActivityDone", "ActivityRef", "AsyncActivities", "activity_call", "parse_json"]

#: The ``flowctl activity`` subcommands.
ACTIVITY_ACTIONS = ("complete", "fail", "heartbeat")


@dataclass(frozen=True)
class ActivityRef:
    """An open activity: by its task token (base64), or by workflow id (+ run id) and activity id."""

    task_token: str | None = None
    workflow_id: str | None = None
    run_id: str | None = None
    activity_id: str | None = None

    def describe(self) -> str:
        """How the activity was named, without the token (tokens never reach logs)."""
        if self.task_token is not None:
            return "the activity of the task token"
        return f"activity {self.activity_id} of workflow {self.workflow_id}"


@dataclass(frozen=True)
class ActivityDone:
    """What one ``flowctl activity complete|fail|heartbeat`` did."""

    action: str
    activity: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (``--json``)."""
        return {"ok": True, "action": self.action, "activity": self.activity}


class AsyncActivities:
    """Complete, fail and heartbeat open activities from outside a worker."""

    def __init__(self, client: Client, source: RevisionSource | None = None) -> None:
        self.client = client
        self.source = source

    def handle(self, ref: ActivityRef) -> AsyncActivityHandle:
        """The SDK's handle of ``ref``; a FlowError when it names no activity well."""
        token = task_token_bytes(ref)
        if token is not None:
            return self.client.get_async_activity_handle(task_token=token)
        return self.client.get_async_activity_handle(workflow_id=ref.workflow_id or "", run_id=ref.run_id,
                                                     activity_id=ref.activity_id or "")

    async def complete(self, ref: ActivityRef, result: Any = None, *,
                       activity_type: str | None = None) -> ActivityDone:
        """Complete the activity with ``result`` (what the workflow's call returns).

        ``activity_type``: its entry ID when the caller knows it (else found from the run's pending activities).
        """
        handle = self.handle(ref)
        await self._check_result(ref, result, activity_type)
        return await _call(ref, "complete", handle.complete(result))

    async def _check_result(self, ref: ActivityRef, result: Any, activity_type: str | None) -> None:
        """ContractError when the activity's entry is known and its output_schema refuses ``result``."""
        if self.source is None:
            return
        activity_type = activity_type or await self._pending_type(ref)
        try:
            revision = self.source.activity(activity_type) if activity_type else None
        except FlowFailure:
            return  # not (or no longer) an entry of this registry
        if revision is None:
            return
        violation = entry_violation(revision.digest, revision.data, "output_schema", result)
        if violation is not None:
            raise ContractError(revision.entry_id, "output_schema", violation)

    async def _pending_type(self, ref: ActivityRef) -> str | None:
        """The activity type of ``ref`` from its run's pending activities (None when it cannot be told)."""
        ids = token_ids(task_token_bytes(ref) or b"") if ref.task_token is not None else ref
        if ids is None or not ids.workflow_id:
            return None  # a token of a form flowctl cannot read: the completion is sent unchecked
        try:
            described = await self.client.get_workflow_handle(ids.workflow_id, run_id=ids.run_id).describe()
        except RPCError:
            return None  # the completion itself says what is wrong
        types = [p.activity_type.name for p in described.raw_description.pending_activities
                 if p.activity_id == ids.activity_id]
        return types[0] if types else None

    async def fail(self, ref: ActivityRef, kind: str, message: str, *, retryable: bool = True,
                   details: Any = None) -> ActivityDone:
        """Fail the attempt with an error of ``kind``; retried per the activity's retry policy when ``retryable``."""
        check_kind(kind)
        handle = self.handle(ref)
        error = to_application_error(FlowFailure(kind, message, retryable=retryable, details=details))
        return await _call(ref, "fail", handle.fail(error))

    async def heartbeat(self, ref: ActivityRef, details: Any = None) -> ActivityDone:
        """Tell Temporal the activity is alive (restarts its heartbeat timeout)."""
        handle = self.handle(ref)
        call = handle.heartbeat(details) if details is not None else handle.heartbeat()
        return await _call(ref, "heartbeat", call)


def task_token_bytes(ref: ActivityRef) -> bytes | None:
    """The decoded token of ``ref`` (None when it names the activity by ids); a FlowError when ``ref`` is bad.

    Checked before connecting: a malformed token or a missing id is the caller's mistake, not the server's.
    """
    if ref.task_token is not None:
        if ref.workflow_id or ref.activity_id:
            raise FlowError("give a task token or --workflow-id with --activity-id, not both")
        try:
            token = base64.b64decode(ref.task_token.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise FlowError("the task token is not base64 text",
                            hint="pass activity.info().task_token exactly as the activity got it") from None
        if not token:
            raise FlowError("the task token is empty", hint="pass activity.info().task_token")
        return token
    if ref.workflow_id and not ref.activity_id:
        raise FlowError("--workflow-id needs --activity-id: no activity named",
                        hint="`flowctl describe WORKFLOW_ID` shows each pending activity's id")
    if not ref.workflow_id or not ref.activity_id:
        raise FlowError("no activity named: give its TOKEN, or --workflow-id with --activity-id",
                        hint="pass a TOKEN, or --workflow-id WFID --activity-id ID")
    return None


#: Fields of the server's task token (temporal.server.api.token.v1.Task, a protobuf message):
#: workflow_id = 2, run_id = 3, activity_id = 6, all strings.
_TOKEN_FIELDS = {2: "workflow_id", 3: "run_id", 6: "activity_id"}


def token_ids(token: bytes) -> ActivityRef | None:
    """The workflow, run and activity ids inside a task token (None when it is not a token flowctl can read).

    The token is the server's protobuf message; only its wire format is read (no schema needed): a
    result completed by token is then checked like one completed by ids.
    """
    found: dict[str, str] = {}
    pos = 0
    try:
        while pos < len(token):
            key, pos = _varint(token, pos)
            field, wire = key >> 3, key & 7
            if wire == 0:
                _, pos = _varint(token, pos)
            elif wire == 2:
                size, pos = _varint(token, pos)
                if field in _TOKEN_FIELDS:
                    found[_TOKEN_FIELDS[field]] = token[pos:pos + size].decode()
                pos += size
            elif wire in (1, 5):
                pos += 8 if wire == 1 else 4
            else:
                return None
    except (IndexError, UnicodeDecodeError):
        return None
    if pos != len(token) or "workflow_id" not in found or "activity_id" not in found:
        return None
    return ActivityRef(workflow_id=found["workflow_id"], run_id=found.get("run_id") or None,
                       activity_id=found["activity_id"])


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise IndexError("varint too long")


def check_kind(kind: str) -> None:
    """A FlowError unless ``kind`` is an error kind (UPPER_SNAKE_CASE)."""
    if not KIND_RE.match(kind):
        raise FlowError(f"--kind {kind!r} is not an error kind", hint="use UPPER_SNAKE_CASE, e.g. DECLINED")


async def _call(ref: ActivityRef, action: str, call: Any) -> ActivityDone:
    try:
        await call
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND and not namespace_missing(exc):
            raise FlowError(f"cannot {action} {ref.describe()}: it is not open (unknown, completed, failed or "
                            "timed out)", hint="`flowctl describe WORKFLOW_ID` lists a run's pending activities"
                            ) from None
        if exc.status == RPCStatusCode.INVALID_ARGUMENT:
            raise FlowError(f"cannot {action} {ref.describe()}: {exc.message}",
                            hint="pass activity.info().task_token exactly as the activity got it") from None
        raise rpc_error(exc, f"cannot {action} {ref.describe()}") from None
    return ActivityDone(action, ref.describe())


def parse_json(text: str | None, option: str) -> Any:
    """``JSON`` or ``@file`` given to ``option``; None when not given."""
    return None if text is None else read_json(text, option, '{"ok": true}')


def activity_call(registry_url: str | None, client_id: str | None, action: str, ref: ActivityRef, *,
                  result: str | None = None, details: str | None = None, kind: str = "", message: str = "",
                  non_retryable: bool = False) -> ActivityDone:
    """``flowctl activity complete|fail|heartbeat``: one call, connected with the registry's client entry."""
    value, extra = parse_json(result, "--result"), parse_json(details, "--details")
    task_token_bytes(ref)  # bad input fails before anything connects
    if action == "fail":
        check_kind(kind)
    client_revision = registry_client(registry_url, client_id)

    async def call() -> ActivityDone:
        activities = AsyncActivities(await connect(client_revision))
        if action == "complete":
            with open_store(registry_url, create=False) as store:
                activities.source = StoreRevisionSource(store)
                return await activities.complete(ref, value)
        if action == "fail":
            return await activities.fail(ref, kind, message, retryable=not non_retryable, details=extra)
        return await activities.heartbeat(ref, extra)

    return asyncio.run(call())

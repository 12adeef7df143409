"""Pending activities in Lua tests: ``test.complete_activity`` / ``fail_activity`` / ``heartbeat_activity``.

An activity that returns ``activity.pending()`` (or a mock that returns ``test.pending()``) stays
open on the time-skipping server, as it would on a real one. ``test.run``'s ``pending`` option
maps an activity entry ID to a Lua function of the test, called once the activity is pending
with what the party outside would know (:func:`pending_view`); it plays that party, finishing
the activity through the same calls as ``flowctl activity`` (runner/client/async_activities.py).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from temporalio import activity
from temporalio.client import Client

from registry.errors import FlowError
from runner.client.async_activities import ActivityRef, AsyncActivities
from runner.revision_source import RevisionSource
from runner.sandbox.driver import ShimError

__all__ = ["OUTSIDE_OPS", "activity_ref", "call_outside", "pending_view"]

#: The test commands that act on an open activity from outside (answered on the event loop).
OUTSIDE_OPS = ("test.complete_activity", "test.fail_activity", "test.heartbeat_activity")


def pending_view(info: activity.Info, inputs: Sequence[Any]) -> dict[str, Any]:
    """What a ``pending`` handler gets: the token, the ids, the attempt and the activity's input."""
    return {"token": base64.b64encode(info.task_token).decode("ascii"), "activity": info.activity_type,
            "activity_id": info.activity_id, "workflow_id": info.workflow_id, "attempt": info.attempt,
            "input": inputs[0] if inputs else None}


def activity_ref(value: Any, what: str) -> ActivityRef:
    """A token (text), or a table with ``token`` or ``workflow_id`` + ``activity_id`` (a pending view)."""
    if isinstance(value, str):
        return ActivityRef(task_token=value)
    if isinstance(value, dict):
        if isinstance(value.get("token"), str):
            return ActivityRef(task_token=value["token"])
        if isinstance(value.get("workflow_id"), str) and isinstance(value.get("activity_id"), str):
            return ActivityRef(workflow_id=value["workflow_id"], activity_id=value["activity_id"])
    raise ShimError(f"{what}: name the activity by its token, the table a pending handler gets, or "
                    "{workflow_id = ..., activity_id = ...}")


async def call_outside(client: Client, op: str, ref: ActivityRef, payload: Any, what: str,
                       source: RevisionSource | None = None, activity_type: str | None = None) -> None:
    """Complete, fail or heartbeat ``ref`` as ``flowctl activity`` would; a ShimError names what went wrong.

    Given the test's entries (``source``), a result is checked against the ``output_schema`` of the
    activity (``activity_type``: the test server's task tokens do not carry the activity id).
    """
    outside = AsyncActivities(client, source)
    try:
        if op == "test.complete_activity":
            await outside.complete(ref, payload, activity_type=activity_type)
        elif op == "test.fail_activity":
            spec = payload if isinstance(payload, dict) else {}
            kind, message = spec.get("kind"), spec.get("message", "")
            if not isinstance(kind, str) or not isinstance(message, str):
                raise ShimError(f"{what}: the error must be errors.new{{kind = \"DECLINED\", message = \"...\"}} "
                                "or a table like it")
            await outside.fail(ref, kind, message, retryable=spec.get("retryable") is not False,
                               details=spec.get("details"))
        else:
            await outside.heartbeat(ref, payload)
    except FlowError as exc:
        raise ShimError(f"{what}: {exc.message}") from None

"""A run's history as command lines: what ``flowctl replay`` prints and golden files keep.

One line per command the workflow issued, in history order — ``activity app:charge_payment``,
``timer 24h``, ``complete`` — with nothing that changes between runs (no ids, no times).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

__all__ = ["INTERNAL_PATCH_PREFIX", "commands_of", "event_type_name", "format_duration"]

#: flowctl's own patches (``workflow.patched``) start with this: they are not the Lua code's commands,
#: so their marker and the ``TemporalChangeVersion`` upsert naming only them are left out of the lines.
INTERNAL_PATCH_PREFIX = "flowctl."


def event_type_name(event: HistoryEvent) -> str:
    """``WorkflowExecutionStarted`` for EVENT_TYPE_WORKFLOW_EXECUTION_STARTED."""
    raw = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
    return "".join(part.capitalize() for part in raw.split("_"))


def format_duration(seconds: float) -> str:
    """``24h``, ``1h30m``, ``2s``, ``250ms``: how entries write durations (hours are the largest unit)."""
    ms = round(seconds * 1000)
    if ms == 0:
        return "0s"
    parts = []
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        if ms >= size:
            parts.append(f"{ms // size}{unit}")
            ms %= size
    return "".join(parts)


def commands_of(events: Iterable[HistoryEvent]) -> list[str]:
    """The commands a run issued (one line each), read from its history events."""
    lines: list[str] = []
    for event in events:
        line = _command_line(event)
        if line is not None:
            lines.append(line)
    return lines


def _command_line(event: HistoryEvent) -> str | None:
    kind = event.event_type
    if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        return f"activity {event.activity_task_scheduled_event_attributes.activity_type.name}"
    if kind == EventType.EVENT_TYPE_TIMER_STARTED:
        timeout = event.timer_started_event_attributes.start_to_fire_timeout
        return f"timer {format_duration(timeout.seconds + timeout.nanos / 1e9)}"
    if kind == EventType.EVENT_TYPE_TIMER_CANCELED:
        return "cancel_timer"
    if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED:
        return "cancel_activity"
    if kind == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
        return f"child {event.start_child_workflow_execution_initiated_event_attributes.workflow_type.name}"
    if kind == EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED:
        return f"signal_external {event.signal_external_workflow_execution_initiated_event_attributes.signal_name}"
    if kind == EventType.EVENT_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED:
        return "cancel_external"
    if kind == EventType.EVENT_TYPE_MARKER_RECORDED:
        marker = event.marker_recorded_event_attributes
        patch = _json(marker.details["patch-data"].payloads[0].data) if "patch-data" in marker.details else None
        if isinstance(patch, dict) and str(patch.get("id", "")).startswith(INTERNAL_PATCH_PREFIX):
            return None
        return f"marker {marker.marker_name}"
    if kind == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
        fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
        changes = _json(fields["TemporalChangeVersion"].data) if "TemporalChangeVersion" in fields else None
        if (set(fields) == {"TemporalChangeVersion"} and isinstance(changes, list) and changes
                and all(str(change).startswith(INTERNAL_PATCH_PREFIX) for change in changes)):
            return None
        return "upsert_search_attributes " + ",".join(sorted(fields))
    if kind == EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED:
        memo = event.workflow_properties_modified_event_attributes.upserted_memo.fields
        return "modify_memo " + ",".join(sorted(memo))
    if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
        return "complete"
    if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
        failure = event.workflow_execution_failed_event_attributes.failure
        kind_name = failure.application_failure_info.type if failure.HasField("application_failure_info") else ""
        return f"fail {kind_name}".rstrip()
    if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
        return "continue_as_new"
    if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED:
        return "canceled"
    return None


def _json(data: bytes) -> object:
    try:
        return json.loads(data)
    except ValueError:
        return None

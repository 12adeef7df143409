"""Reading a run's history in tests, and making the next revision of an entry (a deploy)."""

from __future__ import annotations

import dataclasses
from typing import Any

from temporalio.client import WorkflowHistory

from registry.revision import Revision, compute_digest


def with_source(revision: Revision, source: str) -> Revision:
    """Another revision of the same entry with different Lua source (a deploy, as apply would make it)."""
    digest = compute_digest(revision.entry_id, revision.data, source, {})
    return dataclasses.replace(revision, source=source, digest=digest)


def events(history: WorkflowHistory, attributes: str) -> list[Any]:
    """The attributes of every event of one type, e.g. ``timer_started_event_attributes``."""
    return [getattr(event, attributes) for event in history.events if event.HasField(attributes)]  # type: ignore[arg-type]


def activity_types(history: WorkflowHistory) -> list[str]:
    """The activity types scheduled, in order."""
    return [a.activity_type.name for a in events(history, "activity_task_scheduled_event_attributes")]


def completed_activity_types(history: WorkflowHistory) -> list[str]:
    """The activity type of every ActivityTaskCompleted event, in order."""
    by_id: dict[int, str] = {}
    found = []
    for event in history.events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            by_id[event.event_id] = event.activity_task_scheduled_event_attributes.activity_type.name
        elif event.HasField("activity_task_completed_event_attributes"):
            found.append(by_id[event.activity_task_completed_event_attributes.scheduled_event_id])
    return found


def event_kinds(history: WorkflowHistory) -> list[str]:
    """Each event's attribute field name (its type), in order."""
    return [str(event.WhichOneof("attributes")) for event in history.events]

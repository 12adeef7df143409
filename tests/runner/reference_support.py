"""Helpers for the reference/003 example tests: entry dirs, history inspection, replay loops.

The reference examples' Python activities live next to their YAML; importing this module puts
those directories on ``sys.path`` so the in-process worker (and the tests, to read the
activities' call journals) import the same modules.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from typing import Any

from conftest import ENTRIES
from temporalio.client import WorkflowHistory

from registry.revision import Revision, compute_digest

REFERENCE = ENTRIES / "reference"
SAGA = ENTRIES / "reference_saga"
#: SPEC §5.3: every example history replays this many times, each in fresh Lua interpreters

for _directory in (REFERENCE, SAGA):
    if str(_directory) not in sys.path:
        sys.path.insert(0, str(_directory))
#: the activity modules the worker imports (by the entries' ``handler``), with their call journals
reference_activities = importlib.import_module("reference_activities")
saga_activities = importlib.import_module("saga_activities")


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



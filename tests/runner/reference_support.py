"""Helpers for the reference/003 example tests: entry dirs, history inspection, replay loops.

The reference examples' Python activities live next to their YAML; importing this module puts
those directories on ``sys.path`` so the in-process worker (and the tests, to read the
activities' call journals) import the same modules.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from collections.abc import AsyncIterator, Iterable
from typing import Any

from conftest import ENTRIES
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, WorkflowReplayResults

from registry.revision import Revision, compute_digest
from runner.revisions import RevisionSource
from runner.workflow import make_workflow_class

REFERENCE = ENTRIES / "reference"
SAGA = ENTRIES / "reference_saga"
#: SPEC §5.3: every example history replays this many times, each in fresh Lua interpreters
REPLAYS = 20

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


async def _each(histories: Iterable[WorkflowHistory]) -> AsyncIterator[WorkflowHistory]:
    for history in histories:
        yield history


def replayer(source: RevisionSource, *, follow_pins: bool = True) -> Replayer:
    """A Replayer with flowctl's workflow class: every replayed run builds a new LuaSandbox."""
    return Replayer(workflows=[make_workflow_class(source, follow_pins=follow_pins)],
                    workflow_runner=UnsandboxedWorkflowRunner())


async def replay(source: RevisionSource, histories: Iterable[WorkflowHistory], *,
                 follow_pins: bool = True) -> WorkflowReplayResults:
    """Replay ``histories`` once; failures are returned, not raised."""
    return await replayer(source, follow_pins=follow_pins).replay_workflows(
        _each(list(histories)), raise_on_replay_failure=False)


async def assert_replays(source: RevisionSource, *histories: WorkflowHistory, follow_pins: bool = True,
                         times: int = REPLAYS) -> None:
    """Each history replays ``times`` times (a new Replayer and new interpreters each time): 0 divergences."""
    for attempt in range(times):
        results = await replay(source, histories, follow_pins=follow_pins)
        failures = {run_id: str(err) for run_id, err in results.replay_failures.items()}
        assert failures == {}, f"replay {attempt + 1} of {times} diverged: {failures}"

"""Committed histories of the reference examples replay on today's code; changed code is caught.

tests/runner/temporal/histories/*.json were recorded from real runs (``history.to_json()``, as the
temporalio SDK's own tests keep theirs). They are replayed against the *current* entries, the
way ``flowctl replay`` and auto_upgrade workers run old histories: a change to the runner or
to these workflows that would break runs already in flight fails here. To re-record them after
an intended change, run ``FLOWCTL_RECORD_HISTORIES=1 pytest tests/runner/temporal/test_reference_replay.py``
and commit the files.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHistory
from temporalio.workflow import NondeterminismError

from runner.revision_source import ProjectRevisionSource
from tests.support.histories import activity_types, events, with_source
from tests.support.reference import REFERENCE, SAGA
from tests.support.replay import assert_replays, replayer
from tests.support.worker import lua_worker

HISTORIES = Path(__file__).resolve().parent / "histories"
RECORD = os.environ.get("FLOWCTL_RECORD_HISTORIES") == "1"

#: file name -> (entries dir, workflow entry, input) of the run it holds
RECORDED: dict[str, tuple[Path, str, Any]] = {
    "order_completed.json": (REFERENCE, "app:order_workflow", {
        "id": "o-1001", "customer_id": "c-77", "total": 120, "shipping_address": "1 Main St",
        "ship_after": "200ms"}),
    "order_refunded.json": (REFERENCE, "app:order_workflow", {
        "id": "o-1002", "customer_id": "c-78", "total": 40, "ship_after": "200ms"}),
    "saga_compensated.json": (SAGA, "app:order_saga", {
        "items": [{"sku": "desk"}, {"sku": "lamp"}],
        "payment": {"order_id": "o-1003", "card": "visa"},
        "shipping": {"order_id": "o-1003", "address": ""}}),
}


def committed(name: str) -> WorkflowHistory:
    return WorkflowHistory.from_json(f"recorded-{Path(name).stem}", (HISTORIES / name).read_text())


def source_of(directory: Path) -> ProjectRevisionSource:
    return ProjectRevisionSource.from_paths([directory])


def _scrubbed(history: WorkflowHistory) -> str:
    """The history as JSON without the recording machine's name (worker identities, sticky queues) or its
    paths (Python stack traces of failed activities; replay never reads them)."""

    def scrub(node: Any) -> Any:
        if isinstance(node, dict):
            sticky = node.get("kind") == "TASK_QUEUE_KIND_STICKY"
            return {key: "flowctl-tests" if key == "identity" or (sticky and key == "name")
                    else "" if key == "stackTrace" else scrub(value)
                    for key, value in node.items()}
        if isinstance(node, list):
            return [scrub(item) for item in node]
        return node

    return json.dumps(scrub(history.to_json_dict()), indent=1, sort_keys=True) + "\n"


@pytest.mark.parametrize("name", sorted(RECORDED))
async def test_committed_histories_replay_on_the_current_code(name: str) -> None:
    directory = RECORDED[name][0]
    await assert_replays(source_of(directory), committed(name), follow_pins=False)


@pytest.mark.parametrize("name", sorted(RECORDED))
async def test_committed_histories_match_what_the_code_records_today(dev_server: Any, name: str) -> None:
    """The committed files stay representative: a fresh run schedules the same activities and timers."""
    directory, entry_id, value = RECORDED[name]
    async with lua_worker(await dev_server.client(), directory) as project:
        handle = await project.start(entry_id, value, workflow_id=f"recorded-{Path(name).stem}-{uuid.uuid4().hex[:6]}")
        await handle.result()
        fresh = await handle.fetch_history()
    if RECORD:
        (HISTORIES / name).write_text(_scrubbed(fresh))
    old = committed(name)
    assert activity_types(fresh) == activity_types(old)
    timers = "timer_started_event_attributes"
    assert [t.start_to_fire_timeout for t in events(fresh, timers)] == [t.start_to_fire_timeout
                                                                         for t in events(old, timers)]
    completed = "workflow_execution_completed_event_attributes"
    assert [c.result for c in events(fresh, completed)] == [c.result for c in events(old, completed)]


def _swap(source: str, first: str, second: str) -> str:
    placeholder = "\0swap\0"
    changed = source.replace(first, placeholder).replace(second, first).replace(placeholder, second)
    assert changed != source
    return changed


async def test_swapping_two_activities_is_detected_as_nondeterministic() -> None:
    source = source_of(REFERENCE)
    history = committed("order_completed.json")
    same = await replayer(source, follow_pins=False).replay_workflow(history, raise_on_replay_failure=False)
    assert same.replay_failure is None, "control: the unchanged code replays"

    current = source.workflow("app:order_workflow")
    assert current.source is not None
    source.add(with_source(current, _swap(current.source, '"app:charge_payment"', '"app:ship_order"')))
    changed = await replayer(source, follow_pins=False).replay_workflow(history, raise_on_replay_failure=False)
    assert isinstance(changed.replay_failure, NondeterminismError)
    assert "app:ship_order" in str(changed.replay_failure) or "app:charge_payment" in str(changed.replay_failure)
    with pytest.raises(NondeterminismError):
        await replayer(source, follow_pins=False).replay_workflow(history)


async def test_compensations_in_the_wrong_order_are_detected_as_nondeterministic() -> None:
    """A saga that appends its compensations (undoing oldest first) cannot continue a recorded run."""
    source = source_of(SAGA)
    saga = source.workflow("app:order_saga")
    assert saga.source is not None
    appended = saga.source.replace("table.insert(compensations, 1, {", "table.insert(compensations, {")
    assert appended != saga.source
    source.add(with_source(saga, appended))
    result = await replayer(source, follow_pins=False).replay_workflow(committed("saga_compensated.json"),
                                                                       raise_on_replay_failure=False)
    assert isinstance(result.replay_failure, NondeterminismError)

"""Replaying recorded histories in fresh Lua interpreters, the way a restarted worker would."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, WorkflowReplayResults

from runner.revision_source import RevisionSource
from runner.temporal.workflow import make_workflow_class

#: how many times the replay tests replay each history (docs/sandbox.md, Determinism: at least 20)
REPLAYS = 20


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


class HistoryRecorder:
    """Histories that tests of one module record as they go, replayed together by its last test."""

    def __init__(self) -> None:
        self.histories: list[WorkflowHistory] = []
        #: (workflow id, run id) of the children the recorded runs started: they replay too
        self.children: list[tuple[str, str]] = []

    async def record(self, handle: WorkflowHandle[Any, Any]) -> WorkflowHistory:
        """Keep the run's history for the replay test, and note the children it started."""
        history = await handle.fetch_history()
        self.histories.append(history)
        for event in history.events:
            if event.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
                child = event.child_workflow_execution_started_event_attributes.workflow_execution
                self.children.append((child.workflow_id, child.run_id))
        return history

    async def assert_all_replay(self, source: RevisionSource, client: Client, *, at_least: int,
                                children_at_least: int) -> None:
        """Every recorded run, and every child it started, replays :data:`REPLAYS` times with 0 divergences."""
        assert len(self.histories) >= at_least and len(self.children) >= children_at_least, \
            "the tests above recorded their histories"
        histories = list(self.histories)
        for workflow_id, run_id in self.children:
            histories.append(await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history())
        await assert_replays(source, *histories)

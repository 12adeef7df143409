"""Replaying recorded histories in fresh Lua interpreters, the way a restarted worker would."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

from temporalio.client import WorkflowHistory
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

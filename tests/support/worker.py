"""Runner test harness: serve a directory of entries on the session's real Temporal server.

``async with lua_worker(client, ENTRIES / "basic") as project:`` runs a flowctl
worker (the real dynamic workflow + activity, in this process) for those entries, with
every worker's task queue renamed to a queue unique to the test, and
``await project.run("app:order_workflow", {...})`` starts a workflow pinned to its
revision and returns its result (raising temporalio's WorkflowFailureError on failure).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError

from registry.revision import Revision
from runner.client.start import NO_INPUT, start_workflow
from runner.revision_source import ProjectRevisionSource
from runner.sandbox.runtime import ACTIVITY_LIMITS, WORKFLOW_LIMITS, SandboxLimits
from runner.temporal.worker import serve


@dataclasses.dataclass
class LuaProject:
    """A served set of entries: start runs, read their histories."""

    client: Client
    source: ProjectRevisionSource
    task_queue: str

    async def start(self, entry_id: str, input: Any = NO_INPUT, *, workflow_id: str | None = None,
                    context: Mapping[str, Any] | None = None) -> WorkflowHandle[Any, Any]:
        """Start ``entry_id`` pinned to its current revision; the handle of the run."""
        started = await start_workflow(self.client, self.source, entry_id, input,
                                       workflow_id=workflow_id or f"test-{uuid.uuid4().hex[:12]}",
                                       context=context)
        return started.handle

    async def run(self, entry_id: str, input: Any = NO_INPUT, **kwargs: Any) -> Any:
        """Start ``entry_id`` and wait for its result."""
        handle = await self.start(entry_id, input, **kwargs)
        return await handle.result()


def revisions_on_queue(paths: list[Path | str], task_queue: str, *,
                       versioning: str | None = None) -> dict[str, Revision]:
    """The entries' revisions with every temporal.worker's task queue set to ``task_queue``."""
    source = ProjectRevisionSource.from_paths(paths)
    revisions = {rev.entry_id: rev for rev in source.entries()}
    for entry_id, rev in revisions.items():
        if rev.kind == "temporal.worker":
            data = {**rev.data, "task_queue": task_queue}
            if versioning is not None:
                data["versioning"] = versioning
            revisions[entry_id] = dataclasses.replace(rev, data=data)
    return revisions


@contextlib.asynccontextmanager
async def lua_worker(client: Client, *paths: Path | str, task_queue: str | None = None,
                     workflow_limits: SandboxLimits = WORKFLOW_LIMITS,
                     activity_limits: SandboxLimits = ACTIVITY_LIMITS,
                     versioning: str | None = None) -> AsyncIterator[LuaProject]:
    """Serve the entries under ``paths`` on ``client`` until the block ends (then drain)."""
    queue = task_queue or f"tq-{uuid.uuid4().hex[:12]}"
    source = ProjectRevisionSource(revisions_on_queue(list(paths), queue, versioning=versioning))
    clients = {rev.entry_id: client for rev in source.entries("temporal.client")}
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(source, stop=stop, clients=clients, ready=ready,
                                     workflow_limits=workflow_limits, activity_limits=activity_limits))
    waiter = asyncio.create_task(ready.wait())
    await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiter.cancel()
        task.result()  # serve failed: raise its error here
    try:
        yield LuaProject(client=client, source=source, task_queue=queue)
    finally:
        stop.set()
        await task


async def failure_of(handle: WorkflowHandle[Any, Any]) -> ApplicationError:
    """The ApplicationError a run failed with (an AssertionError when it completed)."""
    try:
        result = await handle.result()
    except WorkflowFailureError as failed:
        assert isinstance(failed.cause, ApplicationError), failed.cause
        return failed.cause
    raise AssertionError(f"{handle.id} completed with {result!r} instead of failing")

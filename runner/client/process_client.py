"""The ``process.*`` start API for code outside workflows: Python programs, ``flowctl run``, tests.

Same semantics as inside a workflow (runner/shims/process.py), with a client instead of
a parent::

    procs = ProcessClient(client, StoreRevisionSource(open_store()))
    pid = await procs.spawn("app:counter_workflow", {"initial": 0}, name="my-counter",
                            messages=[("increment", {"amount": 3})])
    await procs.send(pid, "increment", {"amount": 2})
    result = await procs.wait(pid)

A name (or explicit ``temporal.workflow.id``) makes the start idempotent: by default a
running workflow with that id is reused, and the start messages still reach it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from temporalio.client import Client, WorkflowFailureError
from temporalio.service import RPCError, RPCStatusCode

from registry.contracts import ContractError
from runner.client.start import NO_INPUT, start_workflow
from runner.revision_source import RevisionSource, require_entry
from runner.sandbox.failures import FlowFailure
from runner.temporal.failures import failure_from_temporal

__all__ = ["Pid", "ProcessClient"]


@dataclass(frozen=True)
class Pid:
    """A workflow as a process: ``str(pid)`` is its workflow id."""

    workflow_id: str
    run_id: str | None = None

    def __str__(self) -> str:
        return self.workflow_id


class ProcessClient:
    """Start, message and await flowctl workflows from outside Temporal."""

    def __init__(self, client: Client, source: RevisionSource) -> None:
        self.client = client
        self.source = source

    async def spawn(self, entry_id: str, input: Any = NO_INPUT, *, options: Mapping[str, Any] | None = None,
                    name: str | None = None, messages: Sequence[tuple[str, Any]] = (),
                    context: Mapping[str, Any] | None = None, worker: str | None = None) -> Pid:
        """Start ``entry_id`` (pinned to its current revision); returns its pid.

        An input its ``input_schema`` refuses raises FlowFailure INVALID_INPUT; nothing is started.
        """
        task_queue = None
        if worker is not None:
            task_queue = require_entry(self.source.entry, worker,
                                       hint="name a temporal.worker entry of the registry").task_queue
        try:
            started = await start_workflow(self.client, self.source, entry_id, input, workflow_id=name,
                                           context=context, options=options, messages=messages,
                                           task_queue=task_queue)
        except ContractError as exc:  # as inside a workflow: an INVALID_INPUT failure, nothing started
            raise FlowFailure(exc.kind, exc.message, retryable=False, details=exc.violation.to_dict()) from None
        return Pid(started.workflow_id, started.handle.first_execution_run_id)

    async def exec(self, entry_id: str, input: Any = NO_INPUT, **kwargs: Any) -> Any:
        """Start and wait: the result, or FlowFailure with the workflow's error kind."""
        return await self.wait(await self.spawn(entry_id, input, **kwargs))

    async def wait(self, pid: Pid | str) -> Any:
        """The workflow's result; raises FlowFailure (kind, message, details) when it failed."""
        handle = self.client.get_workflow_handle(str(pid))
        try:
            return await handle.result()
        except WorkflowFailureError as exc:
            raise failure_from_temporal(exc.cause or exc) from None

    async def send(self, pid: Pid | str, topic: str, payload: Any = None) -> None:
        """A message (signal named ``topic``); ``msg:from()`` is nil for a client."""
        try:
            await self.client.get_workflow_handle(str(pid)).signal(topic, payload)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise FlowFailure("NOT_FOUND", f"no running workflow {pid}", retryable=False) from None
            raise

    async def terminate(self, pid: Pid | str, reason: str = "") -> None:
        await self.client.get_workflow_handle(str(pid)).terminate(reason=reason or None)

    async def cancel(self, pid: Pid | str) -> None:
        await self.client.get_workflow_handle(str(pid)).cancel()

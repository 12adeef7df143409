"""Start a workflow entry from outside Temporal (``flowctl run``, tests, the demo).

The start request carries what the worker needs to keep the run on one revision for
its whole life: memo ``flowctl.revision`` = the digest current now (and the
``FlowctlRevision`` search attribute when the namespace has it, so runs can be found
by revision). The task queue is the entry's worker's ``task_queue``; the workflow type
its ``meta.temporal.workflow.name`` or entry ID.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import WorkflowAlreadyStartedError

from registry.durations import parse_duration
from registry.errors import FlowError
from registry.revision import Revision
from runner.failures import FlowFailure
from runner.memo import CONTEXT_MEMO, REVISION_MEMO
from runner.revisions import RevisionSource, task_queue_of_worker, worker_of, workflow_type_of
from runner.temporal_failures import retry_policy

__all__ = ["NO_INPUT", "REVISION_SEARCH_ATTRIBUTE", "StartedWorkflow", "start_workflow", "task_queue_of"]

#: Keyword search attribute registered by `flowctl dev` (runner.devserver) and recommended in the docs.
REVISION_SEARCH_ATTRIBUTE = "FlowctlRevision"
#: Pass as ``input`` to start ``main()`` without arguments.
NO_INPUT: Any = object()

#: Entry ``options`` keys (the reference's temporal.workflow.* names, prefix optional).
_TIMEOUTS = {"execution_timeout": "execution_timeout", "run_timeout": "run_timeout",
             "task_timeout": "task_timeout"}


@dataclass(frozen=True)
class StartedWorkflow:
    """A started run and the revision it is pinned to."""

    handle: WorkflowHandle[Any, Any]
    workflow_id: str
    run_id: str | None
    revision: Revision
    task_queue: str


def task_queue_of(source: RevisionSource, revision: Revision) -> str:
    """The task queue serving a workflow entry: its worker's ``task_queue`` (default: the worker ID)."""
    worker_id = worker_of(revision)
    if worker_id is None:
        raise FlowError(f"{revision.entry_id} names no worker (meta.temporal.workflow.worker)",
                        hint="add the temporal.worker entry that serves it and run `flowctl validate`")
    try:
        worker = source.entry(worker_id)
    except FlowFailure as failure:
        raise FlowError(f"{revision.entry_id}: its worker {worker_id} is not in the registry",
                        hint=failure.message) from None
    return task_queue_of_worker(worker)


async def start_workflow(client: Client, source: RevisionSource, entry_id: str, input: Any = NO_INPUT, *,
                         workflow_id: str | None = None, context: Mapping[str, Any] | None = None,
                         task_queue: str | None = None) -> StartedWorkflow:
    """Start ``entry_id`` (an entry ID or workflow type) pinned to its current revision."""
    try:
        revision = source.workflow(entry_id)
    except FlowFailure as failure:
        raise FlowError(failure.message, hint="list what is applied with `flowctl registry list`") from None
    queue = task_queue or task_queue_of(source, revision)
    run_id_prefix = revision.name.replace("_", "-")
    wf_id = workflow_id or f"{run_id_prefix}-{uuid.uuid4().hex[:12]}"
    memo: dict[str, Any] = {REVISION_MEMO: revision.digest}
    if context:
        memo[CONTEXT_MEMO] = dict(context)
    kwargs = _start_options(revision)
    if await _namespace_has_revision_attribute(client):
        kwargs["search_attributes"] = TypedSearchAttributes([
            SearchAttributePair(SearchAttributeKey.for_keyword(REVISION_SEARCH_ATTRIBUTE), revision.digest)
        ])
    args = [] if input is NO_INPUT else [input]
    try:
        handle = await client.start_workflow(workflow_type_of(revision), args=args, id=wf_id,
                                             task_queue=queue, memo=memo, **kwargs)
    except WorkflowAlreadyStartedError:
        raise FlowError(f"a workflow with id {wf_id!r} is already running",
                        hint="pick another --id, or wait for / cancel the running one") from None
    return StartedWorkflow(handle=handle, workflow_id=wf_id, run_id=handle.result_run_id, revision=revision,
                           task_queue=queue)


def _start_options(revision: Revision) -> dict[str, Any]:
    """Client start options from the entry's ``options`` (``temporal.workflow.*`` keys)."""
    options = revision.data.get("options") or {}
    kwargs: dict[str, Any] = {}
    if not isinstance(options, Mapping):
        return kwargs
    for raw_key, value in options.items():
        key = str(raw_key).removeprefix("temporal.workflow.")
        if key in _TIMEOUTS and value is not None:
            delta: timedelta = parse_duration(value, what=f"{revision.entry_id} options.{raw_key}")
            kwargs[_TIMEOUTS[key]] = delta
        elif key == "retry_policy" and value is not None:
            kwargs["retry_policy"] = retry_policy(value, what=f"{revision.entry_id} options.{raw_key}")
    return kwargs


async def _namespace_has_revision_attribute(client: Client) -> bool:
    try:
        response = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace))
    except Exception:  # not allowed to list (cloud API keys often are not): skip the attribute
        return False
    return REVISION_SEARCH_ATTRIBUTE in response.custom_attributes

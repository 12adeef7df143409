"""Start a workflow entry from outside Temporal (``flowctl run``, tests, the demo).

The start request carries what the worker needs to keep the run on one revision for
its whole life: memo ``flowctl.revision`` = the digest current now (and the
``FlowctlRevision`` search attribute when the namespace has it, so runs can be found
by revision). The task queue is the entry's worker's ``task_queue``; the workflow type
its ``meta.temporal.workflow.name`` or entry ID.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from registry.contracts import ContractError, entry_violation
from registry.errors import FlowError
from registry.revision import Revision
from runner.revision_source import RevisionSource, require_entry
from runner.temporal import tracing
from runner.temporal.memo import CONTEXT_MEMO, MESSAGES_MEMO, REVISION_MEMO
from runner.temporal.options import CONFLICT_POLICIES, conflict_policy, normalize, start_kwargs

__all__ = ["NO_INPUT", "REVISION_SEARCH_ATTRIBUTE", "StartedWorkflow", "check_start_input", "start_workflow",
           "task_queue_of", "workflow_revision"]

#: Keyword search attribute registered by `flowctl dev` (runner.dev.server) and recommended in the docs.
REVISION_SEARCH_ATTRIBUTE = "FlowctlRevision"
#: The server's refusal of a start naming a search attribute the namespace does not have.
_UNKNOWN_ATTRIBUTE = re.compile(r"no mapping defined for search attribute (\S+)")
#: Pass as ``input`` to start ``main()`` without arguments.
NO_INPUT: Any = object()


@dataclass(frozen=True)
class StartedWorkflow:
    """A started run and the revision it is pinned to."""

    handle: WorkflowHandle[Any, Any]
    workflow_id: str
    run_id: str | None
    revision: Revision
    task_queue: str


def workflow_revision(source: RevisionSource, entry_id: str) -> Revision:
    """The current revision of a workflow entry (by entry ID or workflow type), or a FlowError saying so."""
    return require_entry(source.workflow, entry_id, hint="list what is applied with `flowctl registry list`")


def task_queue_of(source: RevisionSource, revision: Revision) -> str:
    """The task queue serving a workflow entry: its worker's ``task_queue`` (default: the worker ID)."""
    worker_id = revision.worker_id
    if worker_id is None:
        raise FlowError(f"{revision.entry_id} names no worker (meta.temporal.workflow.worker)",
                        hint="add the temporal.worker entry that serves it and run `flowctl validate`")
    worker = require_entry(source.entry, worker_id,
                           message=f"{revision.entry_id}: its worker {worker_id} is not in the registry")
    return worker.task_queue


async def start_workflow(client: Client, source: RevisionSource, entry_id: str, input: Any = NO_INPUT, *,
                         workflow_id: str | None = None, context: Mapping[str, Any] | None = None,
                         task_queue: str | None = None, options: Mapping[str, Any] | None = None,
                         messages: Sequence[tuple[str, Any]] = ()) -> StartedWorkflow:
    """Start ``entry_id`` (an entry ID or workflow type) pinned to its current revision.

    ``options`` are ``temporal.workflow.*`` start options (over the entry's own ``options``);
    with an explicit id the default conflict policy is use_existing (an idempotent start).
    ``messages`` (topic, payload) reach the workflow before any later signal: in its memo when
    it starts, or as signal-with-start and signals when an existing run may be reused.
    When the caller traces (``TRACEPARENT`` or an OTLP endpoint in the environment), the start
    is a span of the caller's trace, and the run's spans follow it (runner.temporal.tracing).
    """
    start = functools.partial(_start_workflow, source=source, entry_id=entry_id, input=input, workflow_id=workflow_id,
                              context=context, task_queue=task_queue, options=options, messages=messages)
    if not tracing.tracing_wanted():
        return await start(client)
    revision = workflow_revision(source, entry_id)
    tracing.ensure_provider()
    with tracing.client_span(f"flowctl.start:{revision.entry_id}", {tracing.ENTRY_ATTRIBUTE: revision.entry_id,
                                                                    tracing.REVISION_ATTRIBUTE: revision.digest}):
        return await start(tracing.traced_client(client, tracing.tracing_interceptor(source)))


async def _start_workflow(client: Client, *, source: RevisionSource, entry_id: str, input: Any,
                          workflow_id: str | None, context: Mapping[str, Any] | None, task_queue: str | None,
                          options: Mapping[str, Any] | None, messages: Sequence[tuple[str, Any]]) -> StartedWorkflow:
    revision = workflow_revision(source, entry_id)
    check_start_input(revision, input)
    defaults = revision.data.get("options") if isinstance(revision.data.get("options"), Mapping) else {}
    merged = normalize(defaults, options)
    explicit = workflow_id or merged.get("id")
    conflict = conflict_policy(merged, explicit_id=bool(explicit))
    kwargs = start_kwargs(merged, child=False)
    queue = task_queue or merged.get("task_queue") or task_queue_of(source, revision)
    wf_id = str(explicit or f"{revision.name.replace('_', '-')}-{uuid.uuid4().hex[:12]}")
    memo: dict[str, Any] = dict(merged["memo"]) if isinstance(merged.get("memo"), Mapping) else {}
    memo[REVISION_MEMO] = revision.digest
    if context:
        memo[CONTEXT_MEMO] = dict(context)
    if await _namespace_has_revision_attribute(client):
        pairs = list(kwargs.pop("search_attributes", TypedSearchAttributes([])))
        pairs.append(SearchAttributePair(SearchAttributeKey.for_keyword(REVISION_SEARCH_ATTRIBUTE), revision.digest))
        kwargs["search_attributes"] = TypedSearchAttributes(pairs)
    args = [] if input is NO_INPUT else [input]
    start = functools.partial(client.start_workflow, revision.workflow_type, args=args, id=wf_id,
                              task_queue=str(queue), id_conflict_policy=CONFLICT_POLICIES[conflict], **kwargs)
    try:
        if messages and conflict == "use_existing":
            # signal-with-start: a new run gets the first message as its first signal, a running one
            # like any signal; the rest follow in order, before anything the caller sends later
            first_topic, first_payload = messages[0]
            handle = await start(memo=memo, start_signal=first_topic, start_signal_args=[first_payload])
            for topic, payload in messages[1:]:
                await handle.signal(topic, payload)
        else:
            if messages:
                memo[MESSAGES_MEMO] = [{"topic": t, "payload": p, "from": None} for t, p in messages]
            handle = await start(memo=memo)
    except WorkflowAlreadyStartedError:
        raise await _already_started(client, wf_id, merged.get("id_reuse_policy")) from None
    except RPCError as exc:
        unknown = _UNKNOWN_ATTRIBUTE.search(exc.message)
        if unknown is None:
            raise
        raise FlowError(f"cannot start {revision.entry_id}: namespace {client.namespace!r} has no search attribute "
                        f"{unknown.group(1)!r}",
                        hint=f"register it (`temporal operator search-attribute create --namespace {client.namespace} "
                             f"--name {unknown.group(1)} --type Keyword`) or drop it from the search_attributes "
                             "option") from None
    return StartedWorkflow(handle=handle, workflow_id=wf_id, run_id=handle.result_run_id, revision=revision,
                           task_queue=str(queue))


def check_start_input(revision: Revision, input: Any) -> None:
    """Refuse, before anything starts, an input the entry's ``input_schema`` refuses (none is checked as null)."""
    violation = entry_violation(revision.digest, revision.data, "input_schema", None if input is NO_INPUT else input)
    if violation is not None:
        raise ContractError(revision.entry_id, "input_schema", violation)


async def _already_started(client: Client, wf_id: str, reuse_policy: Any) -> FlowError:
    """Why Temporal refused the start: a run with the id is running, or a closed one and the reuse policy."""
    try:
        status = (await client.get_workflow_handle(wf_id).describe()).status
    except RPCError:
        status = None
    if status is None or status == WorkflowExecutionStatus.RUNNING:
        return FlowError(f"a workflow with id {wf_id!r} is already running",
                         hint="pick another id, or pass --option id_conflict_policy=use_existing to reuse it")
    return FlowError(f"a closed run with id {wf_id!r} exists ({status.name.lower()}), and id_reuse_policy "
                     f"{reuse_policy or 'allow_duplicate'} refuses to start another with that id",
                     hint="pick another id, or pass --option id_reuse_policy=allow_duplicate")


async def _namespace_has_revision_attribute(client: Client) -> bool:
    try:
        response = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace))
    except Exception:  # not allowed to list (cloud API keys often are not): skip the attribute
        return False
    return REVISION_SEARCH_ATTRIBUTE in response.custom_attributes

"""``flowctl list``: runs by entry, revision and status, stuck runs included.

Runs come from Temporal's visibility API, newest first: ``--entry`` becomes a
``WorkflowType`` clause, ``--status`` an ``ExecutionStatus`` one, and ``--query`` is ANDed
in as written. The revision of a run is its effective one: where ``flowctl upgrade`` moved
it (the registry's record), else the one pinned in its memo; ``--revision`` filters on it
here, since visibility cannot see the registry. **stuck** is not a Temporal status: a
running run is stuck when its workflow task keeps failing, which takes a describe (and a
short read of its history) per running run, so at most ``limit`` runs are looked at.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from registry.errors import FlowError
from runner.client.connect import rpc_error
from runner.client.executions import TaskFailure, workflow_task_failure
from runner.temporal.memo import REVISION_MEMO

__all__ = ["LISTED_STATUSES", "ListedRun", "RunFilter", "RunList", "list_runs"]

#: ``--status`` values and the ExecutionStatus each one queries (stuck: running runs, then a describe).
LISTED_STATUSES = {"running": "Running", "stuck": "Running", "failed": "Failed", "completed": "Completed",
                   "canceled": "Canceled", "terminated": "Terminated", "timed_out": "TimedOut",
                   "continued_as_new": "ContinuedAsNew"}
#: With ``--revision``, at most this many runs are read from visibility (the filter runs here, not there).
MAX_SCANNED = 10_000
#: Running runs described concurrently (to tell stuck from running).
_DESCRIBES_AT_ONCE = 10


@dataclass(frozen=True)
class RunFilter:
    """What ``flowctl list`` asks for, the registry's names already resolved."""

    #: the workflow type of ``--entry`` (None: every type)
    workflow_type: str | None = None
    #: a revision digest or a prefix of one; matched against each run's effective revision
    revision: str | None = None
    #: one of LISTED_STATUSES (None: any)
    status: str | None = None
    #: a visibility query ANDed in
    query: str | None = None
    limit: int = 100

    def visibility_query(self) -> str:
        """The query sent to Temporal."""
        clauses = []
        if self.workflow_type is not None:
            clauses.append(f"WorkflowType = '{_quoted(self.workflow_type)}'")
        if self.status is not None:
            clauses.append(f"ExecutionStatus = '{LISTED_STATUSES[self.status]}'")
        if self.query:
            clauses.append(f"({self.query})")
        return " AND ".join(clauses)


@dataclass(frozen=True)
class ListedRun:
    """One run as ``flowctl list`` shows it."""

    workflow_id: str
    run_id: str
    workflow_type: str
    #: the workflow entry whose type this is (None: not a type the registry knows)
    entry_id: str | None
    #: the effective revision digest (None: not started by flowctl)
    revision: str | None
    #: Temporal's status in lower case, or ``stuck`` for a running run whose workflow task keeps failing
    status: str
    start_time: str | None
    close_time: str | None = None
    #: the revision was set by ``flowctl upgrade`` (the run's memo names another)
    upgraded: bool = False
    task_failure: TaskFailure | None = None

    def to_dict(self) -> dict[str, Any]:
        body = {k: v for k, v in self.__dict__.items() if k != "task_failure"}
        body["task_failure"] = self.task_failure.to_dict() if self.task_failure is not None else None
        return body


@dataclass(frozen=True)
class RunList:
    """The runs ``flowctl list`` found, and how it looked for them."""

    query: str
    runs: list[ListedRun] = field(default_factory=list)
    #: runs were left unexamined because of ``--limit`` (or MAX_SCANNED)
    truncated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"query": self.query, "truncated": self.truncated, "runs": [run.to_dict() for run in self.runs]}


async def list_runs(client: Client, wanted: RunFilter, *, entries: Mapping[str, str] | None = None,
                    upgrades: Mapping[tuple[str, str], str] | None = None) -> RunList:
    """The runs matching ``wanted``, newest first; at most ``wanted.limit`` are examined in full.

    ``entries`` maps workflow types to entry IDs, ``upgrades`` ``(workflow_id, run_id)`` to the
    revision ``flowctl upgrade`` moved a run to.
    """
    query = wanted.visibility_query()
    prefix = (wanted.revision or "").lower()
    found: list[ListedRun] = []
    scanned = 0
    truncated = False
    try:
        async for execution in client.list_workflows(query or None, page_size=min(1000, max(wanted.limit, 100))):
            if len(found) >= wanted.limit or scanned >= MAX_SCANNED:
                truncated = True
                break
            scanned += 1
            memo = await execution.memo()
            pinned = memo.get(REVISION_MEMO) if isinstance(memo.get(REVISION_MEMO), str) else None
            moved = (upgrades or {}).get((execution.id, execution.run_id))
            if prefix and not (moved or pinned or "").startswith(prefix):
                continue
            found.append(ListedRun(
                workflow_id=execution.id, run_id=execution.run_id, workflow_type=execution.workflow_type,
                entry_id=(entries or {}).get(execution.workflow_type), revision=moved or pinned,
                status=execution.status.name.lower() if execution.status is not None else "unknown",
                start_time=execution.start_time.isoformat() if execution.start_time else None,
                close_time=execution.close_time.isoformat() if execution.close_time else None,
                upgraded=bool(moved and moved != pinned)))
        describing = asyncio.Semaphore(_DESCRIBES_AT_ONCE)
        runs = await asyncio.gather(*(_with_stuck(client, run, describing) for run in found))
    except RPCError as exc:
        if exc.status == RPCStatusCode.INVALID_ARGUMENT:
            raise FlowError(f"Temporal refused the list query {query!r}: {exc.message}",
                            hint="check --query: Temporal's visibility syntax, e.g. \"StartTime > "
                                 "'2025-01-01T00:00:00Z'\" or \"WorkflowId STARTS_WITH 'order-'\"") from None
        raise rpc_error(exc, "cannot list runs") from None
    listed = [run for run in runs if wanted.status is None or run.status == wanted.status]
    listed.sort(key=lambda run: run.start_time or "", reverse=True)
    return RunList(query=query, runs=listed, truncated=truncated)


async def _with_stuck(client: Client, run: ListedRun, describing: asyncio.Semaphore) -> ListedRun:
    """``run``, its status ``stuck`` when it is running and its workflow task keeps failing."""
    if run.status != "running":
        return run
    async with describing:
        try:
            description = await client.get_workflow_handle(run.workflow_id, run_id=run.run_id).describe()
            failure = await workflow_task_failure(client, description)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            failure = None  # gone meanwhile (retention): not stuck
    return replace(run, status="stuck", task_failure=failure) if failure is not None else run


def _quoted(text: str) -> str:
    """``text`` inside a single-quoted visibility string."""
    return text.replace("\\", "\\\\").replace("'", "\\'")

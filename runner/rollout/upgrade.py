"""``flowctl upgrade``: move pinned runs to another revision of their workflow entry, once replay proves it safe.

A run on a ``pinned`` worker executes the revision in its memo (``flowctl.revision``) for its
whole life. An upgrade records in the registry that it executes another revision of the same
entry from its next workflow task on (``RevisionStore.upgrade_runs``); every worker reads it
through ``RevisionSource.upgraded`` within its poll interval, and a run stuck on a failing
workflow task picks it up on its next task attempt. Before anything is recorded, each run's
history is replayed on the target revision in fresh interpreters (``runner.replay``): one
divergence refuses the whole upgrade and names the run, the event, the command and the Lua
file:line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHistory
from temporalio.service import RPCError, RPCStatusCode

from registry.errors import ExitCode, FlowError
from registry.open_store import open_store
from registry.revision import Revision
from registry.store import RevisionStore, RunUpgrade
from runner.client.connect import connect, namespace_missing, rpc_error
from runner.client.executions import client_entry, workflow_client
from runner.client.start import workflow_revision
from runner.replay import LoadedHistory, replay_histories
from runner.revision_source import ProjectRevisionSource, StoreRevisionSource, require_entry
from runner.sandbox.failures import FlowFailure
from runner.temporal.memo import REVISION_MEMO

__all__ = ["RunMove", "UpgradeRequest", "UpgradeResult", "UpgradeUsageError", "upgrade"]

#: How often a run that keeps completing workflow tasks during the check is replayed again.
_RECHECKS = 3
#: The statuses of a run that does not stop the upgrade.
_FINE = frozenset({"moved", "would_move", "already", "held"})


@dataclass(frozen=True)
class UpgradeRequest:
    """What ``flowctl upgrade`` was asked: one run (``workflow_id``) or ``all_runs`` of ``entry_id`` at ``from_ref``."""

    workflow_id: str | None = None
    run_id: str | None = None
    all_runs: bool = False
    entry_id: str | None = None
    from_ref: str | None = None
    #: a digest (prefix) of the same entry, or ``current``
    to_ref: str = "current"
    dry_run: bool = False
    reason: str = ""
    client_id: str | None = None

    def __post_init__(self) -> None:
        if bool(self.workflow_id) == self.all_runs or (self.all_runs and not (self.entry_id and self.from_ref)):
            raise UpgradeUsageError("pass WORKFLOW_ID, or --all --entry ID --from REV",
                                    hint="`flowctl upgrade WFID` moves one run; --all moves every run of an entry "
                                         "at one revision")


class UpgradeUsageError(FlowError):
    """An upgrade request that names neither one run nor ``--all --entry --from``."""

    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class RunMove:
    """One run's verdict."""

    workflow_id: str
    run_id: str
    #: the revision the run executes now: where an earlier upgrade moved it, else its memo pin
    from_digest: str | None
    #: ``moved`` | ``would_move`` (dry run) | ``already`` (at the target) | ``held`` (replays, but another run
    #: refused the upgrade) | ``diverged`` | ``error`` (the replay failed otherwise)
    status: str
    events: int = 0
    message: str = ""
    #: the Lua file:line of the target's diverging command, when known
    where: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (``upgrade --json``)."""
        return {"workflow_id": self.workflow_id, "run_id": self.run_id, "from": self.from_digest,
                "status": self.status, "events": self.events, "message": self.message, "where": self.where}


@dataclass(frozen=True)
class UpgradeResult:
    """What ``flowctl upgrade`` did (or, refused or ``dry_run``, would have done) to which runs."""

    entry_id: str
    workflow_type: str
    #: the target revision's digest
    target: str
    runs: tuple[RunMove, ...] = field(default_factory=tuple)
    dry_run: bool = False
    #: the registry event that recorded the move (None: nothing recorded)
    event_id: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        """False when a run's history does not replay on the target (then nothing is recorded)."""
        return all(run.status in _FINE for run in self.runs)

    def count(self, *statuses: str) -> int:
        """How many runs have one of ``statuses``."""
        return sum(1 for run in self.runs if run.status in statuses)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (``upgrade --json``)."""
        return {"ok": self.ok, "entry": self.entry_id, "workflow_type": self.workflow_type, "to": self.target,
                "dry_run": self.dry_run, "event": self.event_id, "reason": self.reason,
                "runs": [run.to_dict() for run in self.runs]}


@dataclass
class _Candidate:
    """An open run to move, and the history it was checked with."""

    workflow_id: str
    run_id: str
    from_digest: str | None
    history: WorkflowHistory | None = None


def upgrade(registry_url: str | None, request: UpgradeRequest) -> UpgradeResult:
    """``flowctl upgrade``: find the run(s), replay them on the target, record the move unless one diverges."""
    from runner.rollout.gate import quiet_replay_warnings

    quiet_replay_warnings()
    with open_store(registry_url, create=False) as store, _quiet_replay_logs():
        return asyncio.run(_upgrade(store, request))


@contextlib.contextmanager
def _quiet_replay_logs() -> Iterator[None]:
    """The SDK logs each replayed task the Lua code fails, with a traceback; the verdicts say what matters."""
    logger = logging.getLogger("temporalio.worker._workflow_instance")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


async def _upgrade(store: RevisionStore, request: UpgradeRequest) -> UpgradeResult:
    source = StoreRevisionSource(store)
    if request.all_runs:
        entry = workflow_revision(source, request.entry_id or "")
        _require_pinned(source, entry)
        client = await connect(client_entry(source, request.client_id) if request.client_id
                               else workflow_client(source, entry))
        origin = store.resolve(entry.entry_id, request.from_ref or "")
        target = _target(store, entry, request.to_ref)
        candidates = await _runs_at(client, store, entry, origin)
    else:
        client = await connect(client_entry(source, request.client_id))
        entry, candidate = await _one_run(client, store, source, request.workflow_id or "", request.run_id)
        _require_pinned(source, entry)
        target = _target(store, entry, request.to_ref)
        candidates = [candidate]
    result = UpgradeResult(entry.entry_id, entry.workflow_type, target.digest, dry_run=request.dry_run,
                           reason=request.reason)
    moving = [c for c in candidates if c.from_digest != target.digest]
    already = tuple(RunMove(c.workflow_id, c.run_id, c.from_digest, "already") for c in candidates
                    if c.from_digest == target.digest)
    if not moving:
        return replace(result, runs=already)
    verdicts = await _checked(client, store, target, moving)
    if any(move.status not in _FINE for move in verdicts):
        return replace(result, runs=already + verdicts)
    if request.dry_run:
        return replace(result, runs=already + tuple(replace(move, status="would_move") for move in verdicts))
    event = store.upgrade_runs([RunUpgrade(c.workflow_id, c.run_id, entry.entry_id, target.digest, c.from_digest)
                                for c in moving], note=request.reason)
    return replace(result, runs=already + tuple(replace(move, status="moved") for move in verdicts),
                   event_id=event.id)


def _target(store: RevisionStore, entry: Revision, to_ref: str) -> Revision:
    """The revision to move to: the entry's current one, or a stored revision of the same entry."""
    if to_ref.strip().lower() in ("", "current"):
        return entry
    return store.resolve(entry.entry_id, to_ref)


def _require_pinned(source: StoreRevisionSource, entry: Revision) -> None:
    """Runs on an ``auto_upgrade`` worker already execute the current revision: there is nothing to move."""
    try:
        worker = source.entry(entry.worker_id or "")
    except FlowFailure:
        return  # no worker entry: the run's own worker decides
    if worker.data.get("versioning") == "auto_upgrade":
        raise FlowError(f"{entry.entry_id} is served by {worker.entry_id}, an auto_upgrade worker: its runs execute "
                        "the current revision from their next workflow task on; `flowctl upgrade` moves runs of "
                        "pinned workers", hint="apply the revision instead (the replay gate checks the open runs)")


async def _one_run(client: Client, store: RevisionStore, source: StoreRevisionSource, workflow_id: str,
                   run_id: str | None) -> tuple[Revision, _Candidate]:
    """The entry and the open run ``workflow_id`` (its latest run, or ``run_id``)."""
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    try:
        desc = await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND and not namespace_missing(exc):
            raise FlowError(f"no workflow execution {workflow_id!r}{_run_text(run_id)} in namespace "
                            f"{client.namespace!r}", hint="check the id (flowctl run prints it) and --client") from None
        raise rpc_error(exc, f"cannot describe {workflow_id}") from None
    if desc.status != WorkflowExecutionStatus.RUNNING:
        status = desc.status.name.lower() if desc.status is not None else "closed"
        raise FlowError(f"{workflow_id} (run {desc.run_id}) is {status}: only open runs can be upgraded",
                        hint="a closed run executes no more workflow tasks; start a new one with `flowctl run`")
    entry = require_entry(source.workflow, desc.workflow_type,
                          message=f"{workflow_id} runs workflow type {desc.workflow_type!r}, which no workflow "
                                  "entry of the registry serves",
                          hint="check --registry (and that the entry was not deleted)")
    pin = (await desc.memo()).get(REVISION_MEMO)
    return entry, _Candidate(workflow_id, desc.run_id, _effective(store.run_upgrades(), workflow_id, desc.run_id, pin))


async def _runs_at(client: Client, store: RevisionStore, entry: Revision, origin: Revision) -> list[_Candidate]:
    """The open runs of ``entry``'s workflow type whose effective revision is ``origin``."""
    query = f"WorkflowType = '{entry.workflow_type}' AND ExecutionStatus = 'Running'"
    found = []
    upgrades = store.run_upgrades()
    try:
        async for execution in client.list_workflows(query):
            pin = (await execution.memo()).get(REVISION_MEMO)
            digest = _effective(upgrades, execution.id, execution.run_id, pin)
            if digest == origin.digest:
                found.append(_Candidate(execution.id, execution.run_id, digest))
    except RPCError as exc:
        raise rpc_error(exc, f"cannot list the runs of {entry.workflow_type}") from None
    if not found:
        raise FlowError(f"no open run of {entry.entry_id} executes revision {origin.short_digest}",
                        hint=f"`flowctl versions {entry.entry_id}` lists the revisions its open runs were pinned to")
    return found


def _effective(upgrades: Mapping[tuple[str, str], RunUpgrade], workflow_id: str, run_id: str,
               pin: Any) -> str | None:
    """The revision a run executes: where an earlier upgrade moved it, else its memo pin."""
    moved = upgrades.get((workflow_id, run_id))
    if moved is not None:
        return moved.digest
    return pin if isinstance(pin, str) else None


async def _checked(client: Client, store: RevisionStore, target: Revision,
                   candidates: list[_Candidate]) -> tuple[RunMove, ...]:
    """Replay each run on ``target``; again while a run completed more workflow tasks than the replay saw."""
    revisions = {rev.entry_id: rev for rev in store.list_current()}
    revisions[target.entry_id] = target
    source = ProjectRevisionSource(revisions)
    stale = list(candidates)
    for _ in range(_RECHECKS):
        for candidate in stale:
            candidate.history = await _history(client, candidate)
        stale = []
        verdicts = await _replayed(source, candidates)
        if any(move.status not in _FINE for move in verdicts):
            return verdicts
        for candidate in candidates:
            latest = await _history(client, candidate)
            assert candidate.history is not None
            if _last_completed_task(latest) != _last_completed_task(candidate.history):
                stale.append(candidate)
        if not stale:
            return verdicts
    raise FlowError(f"{stale[0].workflow_id} kept completing workflow tasks while it was checked",
                    hint="retry the upgrade (or pause what drives the run)")


async def _replayed(source: ProjectRevisionSource, candidates: list[_Candidate]) -> tuple[RunMove, ...]:
    histories = [LoadedHistory(c.workflow_id, history=c.history) for c in candidates]
    results = await replay_histories(source, histories)
    return tuple(RunMove(c.workflow_id, c.run_id, c.from_digest, "held" if r.ok else r.status, r.events,
                         r.message if r.status != "error" else f"the replay on the target failed: {r.message}",
                         r.where)
                 for c, r in zip(candidates, results, strict=True))


async def _history(client: Client, candidate: _Candidate) -> WorkflowHistory:
    try:
        return await client.get_workflow_handle(candidate.workflow_id, run_id=candidate.run_id).fetch_history()
    except RPCError as exc:
        raise rpc_error(exc, f"cannot fetch the history of {candidate.workflow_id} (run {candidate.run_id})") from None


def _last_completed_task(history: WorkflowHistory) -> int:
    """The event id of the last WorkflowTaskCompleted: every command the run recorded comes before or with it."""
    return max((event.event_id for event in history.events
                if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED), default=0)


def _run_text(run_id: str | None) -> str:
    return f" (run {run_id})" if run_id else ""

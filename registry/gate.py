"""The replay gate, registry half: which workflow entries of a plan it checks, and its verdict.

An apply reaches the open runs of a workflow entry only through a worker that runs them
``versioning: auto_upgrade`` (a pinned run keeps the revision it started on). So the gate
checks the *changed* workflow entries whose worker is ``auto_upgrade`` in the registry or
in the tree, and the unchanged ones whose worker becomes ``auto_upgrade`` (their runs pinned
to older revisions move to the current one). The runner replays the runs of those entries on
the new revisions (``runner/rollout/gate.py``) and answers with a :class:`GateVerdict`.

This module is pure: ``flowctl apply`` and ``flowctl diff`` reach the runner only through the
:class:`Gate` callback they are given, and only when there is something to check — a tree
whose workflows run on pinned workers never contacts a server.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from registry.plan import Action, Plan, PlannedChange
from registry.revision import WORKFLOW_KIND, Revision
from registry.store import RevisionStore

__all__ = ["AUTO_UPGRADE", "Gate", "GateRequest", "GateTarget", "GateVerdict", "RunDivergence", "WorkflowRuns",
           "gate_targets", "is_auto_upgrade", "run_gate"]

AUTO_UPGRADE = "auto_upgrade"
#: An entry's revision on one side of the apply (None: not there).
Lookup = Callable[[str | None], Revision | None]
#: What ``apply`` and ``diff`` say when nothing needed the gate.
NOT_NEEDED = "no changed workflow has runs on an auto_upgrade worker"


def is_auto_upgrade(worker: Revision | None) -> bool:
    """Whether a temporal.worker revision moves its runs to each new revision (``versioning: auto_upgrade``)."""
    return worker is not None and worker.data.get("versioning") == AUTO_UPGRADE


@dataclass(frozen=True)
class GateTarget:
    """A workflow entry whose open runs would execute its new revision after the apply."""

    entry_id: str
    #: the Temporal workflow types its runs carry (the registry's, and the tree's when it renames it)
    workflow_types: tuple[str, ...]
    #: the auto_upgrade temporal.worker entry that would move its runs
    worker_id: str
    #: the temporal.client entry its runs live on (the registry's worker's, else the tree's)
    client_id: str
    #: why it is checked, for people
    reason: str
    #: True when the registry's worker already runs it auto_upgrade: its open runs execute the
    #: registry's current revision, so one that fails there too is not stranded by this apply
    upgrading_now: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.entry_id, "workflow_types": list(self.workflow_types), "worker": self.worker_id,
                "client": self.client_id, "reason": self.reason}


@dataclass(frozen=True)
class GateRequest:
    """What the runner needs to replay the targets' runs: the revisions before and after the apply."""

    targets: tuple[GateTarget, ...]
    #: the registry's current revisions, by entry ID (what runs execute now)
    current: Mapping[str, Revision]
    #: the revisions after the apply: the registry's current ones overlaid with the tree's
    after: Mapping[str, Revision]


@dataclass(frozen=True)
class RunDivergence:
    """One run the new code cannot replay: where it differs, and the fix."""

    entry_id: str
    workflow_id: str
    run_id: str
    #: whether the run is still open (a closed one was replayed as a sample of later steps)
    open: bool
    #: ``diverged`` (the new code issues other commands) or ``failed`` (it fails the workflow task)
    status: str
    #: the replay's own words
    message: str
    #: the history event the new code disagrees with, and the command it recorded
    event_id: int | None = None
    history_command: str | None = None
    #: the command the new code issues instead (None: none), and the Lua file:line issuing it
    new_command: str | None = None
    where: str | None = None
    #: the Lua to write ("" when no ``workflow.version`` call fixes it), and where and why
    fix: str = ""
    fix_hint: str = ""
    #: the run fails on the registry's current revision too: this apply does not strand it
    already_failing: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"entry": self.entry_id, "workflow_id": self.workflow_id, "run_id": self.run_id, "open": self.open,
                "status": self.status, "message": self.message, "event_id": self.event_id,
                "history_command": self.history_command, "new_command": self.new_command, "where": self.where,
                "fix": self.fix, "fix_hint": self.fix_hint, "already_failing": self.already_failing}


@dataclass(frozen=True)
class WorkflowRuns:
    """How many runs of one target the gate replayed."""

    target: GateTarget
    open_runs: int = 0
    closed_runs: int = 0
    #: listed, but gone before their history was fetched (deleted by retention, ...)
    gone: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {**self.target.to_dict(), "open_runs": self.open_runs, "closed_runs": self.closed_runs,
                "gone": self.gone}


@dataclass(frozen=True)
class GateVerdict:
    """The gate's answer: ok, skipped (why), or the runs that would fail and why; with its wall time."""

    #: why the gate did not replay anything ("" when it did)
    skipped: str = ""
    #: ``--no-gate --reason TEXT``: the operator's reason, recorded in the apply event
    no_gate_reason: str = ""
    #: why it could not run (no server reachable, ...): the apply is refused
    error: str = ""
    hint: str = ""
    workflows: tuple[WorkflowRuns, ...] = ()
    divergences: tuple[RunDivergence, ...] = ()
    seconds: float = 0.0

    @property
    def blocking(self) -> list[RunDivergence]:
        """The divergences this apply would cause (not those of runs already failing)."""
        return [d for d in self.divergences if not d.already_failing]

    @property
    def ok(self) -> bool:
        """True when the apply may go ahead."""
        return not self.error and not self.blocking

    @property
    def runs(self) -> int:
        return sum(w.open_runs + w.closed_runs for w in self.workflows)

    def note(self) -> str:
        """The apply event's note: what the gate did (empty when it was not needed)."""
        if self.no_gate_reason:
            return f"replay gate skipped (--no-gate): {self.no_gate_reason}"
        if self.skipped:
            return ""
        return f"replay gate: {_plural(self.runs, 'run')} of {_plural(len(self.workflows), 'workflow')} " \
               f"replayed in {self.seconds:.1f} s"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (the ``gate`` key of ``apply --json`` and ``diff --json``)."""
        return {"ok": self.ok, "skipped": self.skipped or None, "no_gate_reason": self.no_gate_reason or None,
                "error": self.error or None,
                "hint": self.hint or None, "seconds": round(self.seconds, 3), "runs": self.runs,
                "workflows": [w.to_dict() for w in self.workflows],
                "divergences": [d.to_dict() for d in self.divergences]}


class Gate(Protocol):
    """Replays the targets' runs on the new revisions (``runner.rollout.ReplayGate``)."""

    def __call__(self, request: GateRequest) -> GateVerdict: ...


def gate_targets(plan: Plan, store: RevisionStore) -> list[GateTarget]:
    """The workflow entries of ``plan`` whose open runs the apply would move onto new code, by entry ID."""
    by_id = {change.entry_id: change for change in plan.changes}

    def before(entry_id: str | None) -> Revision | None:
        change = by_id.get(entry_id or "")
        return change.old if change is not None else store.current(entry_id or "")

    def after(entry_id: str | None) -> Revision | None:
        change = by_id.get(entry_id or "")
        if change is None:
            return store.current(entry_id or "")
        return change.new if change.new is not None or plan.prune else change.old

    targets = []
    for change in plan.changes:
        target = _target(change, before, after)
        if target is not None:
            targets.append(target)
    return targets


def _target(change: PlannedChange, before: Lookup, after: Lookup) -> GateTarget | None:
    new, old = change.new, change.old
    if new is None or old is None or new.kind != WORKFLOW_KIND or change.action is Action.CREATED:
        return None
    old_worker, new_worker = before(old.worker_id), after(new.worker_id)
    auto_now, auto_next = is_auto_upgrade(old_worker), is_auto_upgrade(new_worker)
    if change.action is Action.CHANGED and (auto_now or auto_next):
        reason = "changed"
    elif change.action is Action.UNCHANGED and auto_next and not auto_now:
        reason = "its worker becomes auto_upgrade"
    else:
        return None
    worker = new_worker if auto_next else old_worker
    home = old_worker or new_worker
    assert worker is not None and home is not None  # one of the two is auto_upgrade
    types = tuple(dict.fromkeys((old.workflow_type, new.workflow_type)))
    return GateTarget(new.entry_id, types, worker.entry_id, home.ref(home.data.get("client")),
                      f"{reason}; worker {worker.entry_id} is auto_upgrade", upgrading_now=auto_now)


def run_gate(plan: Plan, store: RevisionStore, gate: Gate | None, *,
             no_gate_reason: str | None = None) -> GateVerdict | None:
    """The verdict on ``plan``: ``gate`` is called only when a target exists and ``no_gate_reason`` is unset.

    None when no gate was asked for (library callers such as ``flowctl dev``).
    """
    if no_gate_reason:
        return GateVerdict(skipped="--no-gate", no_gate_reason=no_gate_reason)
    if gate is None:
        return None
    targets = gate_targets(plan, store)
    if not targets:
        return GateVerdict(skipped=NOT_NEEDED)
    current = {rev.entry_id: rev for rev in store.list_current()}
    after = plan.applied_to(current)
    return gate(GateRequest(tuple(targets), current, after))


def _plural(n: int, word: str) -> str:
    return f"{n} {word if n == 1 else word + 's'}"

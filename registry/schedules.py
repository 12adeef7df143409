"""Schedules on the cluster, registry half: what each ``temporal.schedule`` entry asks of Temporal, and what
``flowctl diff`` / ``flowctl apply`` found and did there.

A schedule entry becomes a :class:`DesiredSchedule`: its ID, the client it lives on, and four parts as
plain data — ``spec`` (when), ``action`` (which workflow, on which task queue, with which input and
start options), ``policy`` (overlap, catch-up window, pause on failure) and ``state`` (paused, note).
Each part has a digest; the runner writes them into the schedule's action memo (``flowctl.schedule``)
when it creates or updates the schedule, so the next apply compares digests, not Temporal's
normalized spec, and an unchanged tree makes no changing call. The schedule's own memo carries the
entry ID: flowctl touches only schedules it created.

The registry never talks to Temporal: ``publish.py`` hands a :class:`ScheduleRequest` (built from the
plan, after the registry write for ``apply``) to a :class:`ScheduleSync` callback, the runner's
``runner.schedules.ScheduleReconciler``, and renders the :class:`ScheduleReport` it answers with.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from registry.errors import FlowError
from registry.plan import Action, Plan
from registry.revision import WORKFLOW_KIND, Revision, canonical_json
from registry.schedule_spec import SCHEDULE_KIND, SpecError, duration_seconds, normalized_spec, plain_value
from registry.store import RevisionStore

__all__ = ["OVERLAPS", "PARTS", "SCHEDULE_KIND", "SCHEDULE_MEMO", "START_OPTION_KEYS", "DesiredSchedule",
           "ScheduleAction", "ScheduleChange", "ScheduleRef", "ScheduleReport", "ScheduleRequest", "ScheduleSync",
           "desired_schedule", "schedule_ref", "schedule_request"]

#: Memo key of flowctl's marks: on the schedule ``{"entry": ID}`` (who owns it), on its runs what was applied.
SCHEDULE_MEMO = "flowctl.schedule"
#: The parts of a schedule apply compares and updates one by one.
PARTS = ("spec", "action", "policy", "state")
#: What a schedule does when an action is due while its previous run is open (Temporal's overlap policies).
OVERLAPS = ("skip", "buffer_one", "buffer_all", "cancel_other", "terminate_other", "allow_all")
#: Start options a schedule's runs take from the workflow's ``options`` and the schedule's own.
START_OPTION_KEYS = ("id", "task_queue", "execution_timeout", "run_timeout", "task_timeout", "retry_policy")
_PREFIX = "temporal.workflow."


class ScheduleAction(enum.StrEnum):
    """What apply does (or did) to one schedule on the cluster."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    UNCHANGED = "unchanged"
    #: left as it is: its entry is gone from the tree but kept in the registry (no --prune), or it is not flowctl's
    KEPT = "kept"
    #: a schedule with its ID exists that flowctl did not create (or another entry owns): nothing done
    CONFLICT = "conflict"


#: The actions that change the cluster.
CHANGING = frozenset({ScheduleAction.CREATE, ScheduleAction.UPDATE, ScheduleAction.DELETE})


@dataclass(frozen=True)
class DesiredSchedule:
    """What one schedule entry asks of Temporal, as plain data."""

    entry_id: str
    schedule_id: str
    #: the temporal.client entry it lives on
    client_id: str
    #: the schedule entry's revision digest
    revision: str
    spec: dict[str, Any]
    action: dict[str, Any]
    policy: dict[str, Any]
    state: dict[str, Any]

    def digests(self) -> dict[str, str]:
        """Each part's digest (16 hex digits of the sha256 of its canonical JSON)."""
        return {part: hashlib.sha256(canonical_json(getattr(self, part)).encode()).hexdigest()[:16]
                for part in PARTS}

    def marker(self) -> dict[str, Any]:
        """What the runs' memo records under ``flowctl.schedule``: schedule, entry, revision, part digests."""
        return {"schedule": self.schedule_id, "entry": self.entry_id, "revision": self.revision,
                "parts": self.digests()}

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.schedule_id, "entry": self.entry_id, "client": self.client_id, "revision": self.revision,
                **{part: getattr(self, part) for part in PARTS}}


@dataclass(frozen=True)
class ScheduleRef:
    """A schedule apply leaves alone or deletes: its ID, entry and client."""

    entry_id: str
    schedule_id: str
    client_id: str


@dataclass(frozen=True)
class ScheduleChange:
    """One schedule's line in the plan or the apply: the action, what an update changes, and how it went."""

    schedule_id: str
    entry_id: str
    client_id: str
    action: ScheduleAction
    #: the parts an update changes (spec, action, policy, state)
    parts: tuple[str, ...] = ()
    #: extra words for people, e.g. why it is kept or that an operator paused it
    note: str = ""
    #: ``planned`` (diff, dry run), ``done``, ``failed`` (``error`` says why) or ``skipped`` (an earlier call failed)
    status: str = "planned"
    error: str = ""
    #: the revision of the schedule entry it is (to be) applied from, and the one the cluster has now
    revision: str | None = None
    applied_revision: str | None = None

    @property
    def changing(self) -> bool:
        return self.action in CHANGING

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.schedule_id, "entry": self.entry_id, "client": self.client_id, "action": str(self.action),
                "parts": list(self.parts), "note": self.note, "status": self.status, "error": self.error or None,
                "revision": self.revision, "applied_revision": self.applied_revision}


@dataclass(frozen=True)
class ScheduleReport:
    """The schedules part of a plan (``applied`` False) or of an apply: one change per schedule."""

    changes: tuple[ScheduleChange, ...] = ()
    applied: bool = False
    #: why the cluster could not be asked at all (then ``changes`` holds only what was known without it)
    error: str = ""
    hint: str = ""

    @property
    def ok(self) -> bool:
        """No error, no failed call, no conflict."""
        return not self.error and not any(c.status == "failed" or c.action is ScheduleAction.CONFLICT
                                          for c in self.changes)

    @property
    def has_changes(self) -> bool:
        """A plan: apply would change the cluster. An apply: it changed it."""
        return any(c.changing and (not self.applied or c.status == "done") for c in self.changes)

    def counts(self) -> dict[str, int]:
        return {str(action): sum(c.action is action for c in self.changes) for action in ScheduleAction}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (the ``schedules`` key of ``diff --json`` and ``apply --json``)."""
        return {"ok": self.ok, "applied": self.applied, "error": self.error or None, "hint": self.hint or None,
                "counts": self.counts(), "changes": [change.to_dict() for change in self.changes]}


@dataclass(frozen=True)
class ScheduleRequest:
    """What the runner reconciles: the schedules the entries want, and those apply keeps or deletes."""

    desired: tuple[DesiredSchedule, ...] = ()
    #: entries gone from the tree but kept in the registry (no --prune): their schedules stay as they are
    kept: tuple[ScheduleRef, ...] = ()
    #: schedules of the entries this apply deletes (--prune)
    removed: tuple[ScheduleRef, ...] = ()
    #: temporal.client revisions by entry ID, to connect with
    clients: Mapping[str, Revision] = field(default_factory=dict)
    #: an owned schedule whose entry is in one of these namespaces and that no entry wants is an orphan
    namespaces: frozenset[str] = frozenset()
    prune: bool = False
    #: schedule entries whose desired state cannot be built (a conflict each, with the reason)
    problems: tuple[ScheduleChange, ...] = ()
    #: what the registry plan does to each schedule entry (created, changed, unchanged, deleted)
    registry_actions: Mapping[str, Action] = field(default_factory=dict)

    def without_cluster(self) -> tuple[ScheduleChange, ...]:
        """The plan as far as the registry tells it, for when the cluster cannot be asked."""
        unknown = "the cluster was not asked"
        by_entry = {Action.CREATED: ScheduleAction.CREATE, Action.CHANGED: ScheduleAction.UPDATE}
        return (*self.problems,
                *(ScheduleChange(d.schedule_id, d.entry_id, d.client_id,
                                 by_entry.get(self.registry_actions.get(d.entry_id, Action.UNCHANGED),
                                              ScheduleAction.UNCHANGED), note=unknown, revision=d.revision)
                  for d in self.desired),
                *(ScheduleChange(r.schedule_id, r.entry_id, r.client_id, ScheduleAction.KEPT,
                                 note="gone from the tree; apply --prune deletes it") for r in self.kept),
                *(ScheduleChange(r.schedule_id, r.entry_id, r.client_id, ScheduleAction.DELETE, note=unknown)
                  for r in self.removed))


class ScheduleSync(Protocol):
    """Plans (``apply`` False: describe only) or applies a request on the cluster (``runner.schedules``)."""

    def __call__(self, request: ScheduleRequest, *, apply: bool) -> ScheduleReport: ...


def schedule_request(plan: Plan, store: RevisionStore) -> ScheduleRequest | None:
    """The schedules of ``plan`` (the registry's current entries overlaid with the tree's), or None when the
    tree and the registry have no schedule entry in the tree's namespaces (then no cluster is asked)."""
    current = {rev.entry_id: rev for rev in store.list_current()}
    after = plan.applied_to(current)
    namespaces = frozenset(change.entry_id.split(":", 1)[0] for change in plan.changes)
    gone = [c for c in plan.of(Action.DELETED) if c.old is not None and c.old.kind == SCHEDULE_KIND]
    kept_ids = {c.entry_id for c in gone if not plan.prune}
    wanted = [rev for rev in after.values() if rev.kind == SCHEDULE_KIND and rev.namespace in namespaces
              and rev.entry_id not in kept_ids]
    if not wanted and not gone:
        return None
    desired, problems = [], []
    for rev in sorted(wanted, key=lambda r: r.entry_id):
        try:
            desired.append(desired_schedule(rev, after))
        except FlowError as exc:
            problems.append(ScheduleChange(_schedule_id(rev), rev.entry_id, "", ScheduleAction.CONFLICT,
                                           status="failed", error=exc.message, revision=rev.digest))
    refs = {c.entry_id: ScheduleRef(c.entry_id, _schedule_id(c.old), _client_of(c.old, current) or "")
            for c in gone if c.old is not None}
    clients = {rev.entry_id: rev for rev in (*current.values(), *after.values()) if rev.kind == "temporal.client"}
    return ScheduleRequest(desired=tuple(desired), kept=tuple(refs[i] for i in sorted(kept_ids)),
                           removed=tuple(ref for i, ref in sorted(refs.items()) if i not in kept_ids),
                           clients=clients, namespaces=namespaces, prune=plan.prune, problems=tuple(problems),
                           registry_actions={c.entry_id: c.action for c in plan.changes if c.kind == SCHEDULE_KIND})


def desired_schedule(revision: Revision, entries: Mapping[str, Revision]) -> DesiredSchedule:
    """What ``revision`` (a temporal.schedule) asks of Temporal, its references looked up in ``entries``."""
    data = revision.data
    workflow = entries.get(revision.ref(data.get("workflow")))
    if workflow is None or workflow.kind != WORKFLOW_KIND:
        raise FlowError(f"{revision.entry_id}: its workflow {revision.ref(data.get('workflow'))} is not an applied "
                        "workflow.lua entry", hint="apply the workflow entry with the schedule")
    worker = entries.get(workflow.worker_id or "")
    client_id = _client_of(revision, entries)
    if worker is None or not client_id or client_id not in entries:
        raise FlowError(f"{revision.entry_id}: cannot tell which temporal.client the schedule lives on",
                        hint=f"apply the worker and client of {workflow.entry_id}, or set the schedule's `client`")
    options = {key.removeprefix(_PREFIX): value for layer in (workflow.data.get("options"), data.get("options"))
               if isinstance(layer, Mapping) for key, value in layer.items()
               if key.removeprefix(_PREFIX) in START_OPTION_KEYS}
    task_queue = options.pop("task_queue", None) or worker.task_queue
    workflow_id = options.pop("id", None) or revision.name.replace("_", "-")
    try:
        spec = normalized_spec(data)
        catchup = duration_seconds(data.get("catchup_window"), "catchup_window")
    except SpecError as exc:
        raise FlowError(f"{revision.entry_id}: {exc}", hint="run `flowctl validate`") from None
    action = {"workflow": workflow.entry_id, "workflow_type": workflow.workflow_type, "task_queue": str(task_queue),
              "id": str(workflow_id), "args": [plain_value(data["input"])] if "input" in data else [],
              "options": plain_value(options), "memo": _merged(workflow, data, "memo"),
              "search_attributes": _merged(workflow, data, "search_attributes"),
              "revision": workflow.digest if data.get("revision") == "pinned" else None}
    policy = {"overlap": str(data.get("overlap") or "skip"), "catchup_window": catchup,
              "pause_on_failure": bool(data.get("pause_on_failure", False))}
    state = {"paused": bool(data.get("paused", False)), "note": str(data.get("note") or "")}
    return DesiredSchedule(revision.entry_id, _schedule_id(revision), client_id, revision.digest, spec, action,
                           policy, state)


def _merged(workflow: Revision, data: Mapping[str, Any], key: str) -> dict[str, Any]:
    """The runs' memo or search attributes: the workflow's ``options`` ones, then the schedule's own."""
    options = workflow.data.get("options")
    base = options.get(_PREFIX + key) if isinstance(options, Mapping) else None
    own = data.get(key)
    return plain_value({**(base if isinstance(base, Mapping) else {}), **(own if isinstance(own, Mapping) else {})})


def schedule_ref(revision: Revision, entries: Mapping[str, Revision]) -> ScheduleRef:
    """A schedule entry's schedule ID and client (``""`` when ``entries`` cannot tell it)."""
    return ScheduleRef(revision.entry_id, _schedule_id(revision), _client_of(revision, entries) or "")


def _schedule_id(revision: Revision) -> str:
    schedule_id = revision.data.get("schedule_id")
    return schedule_id if isinstance(schedule_id, str) and schedule_id else revision.entry_id


def _client_of(revision: Revision, entries: Mapping[str, Revision]) -> str | None:
    """The temporal.client a schedule revision lives on: its own ``client``, else its workflow's worker's."""
    if revision.data.get("client"):
        return revision.ref(revision.data["client"])
    workflow = entries.get(revision.ref(revision.data.get("workflow")))
    worker = entries.get(workflow.worker_id or "") if workflow is not None else None
    return worker.ref(worker.data.get("client")) if worker is not None and worker.data.get("client") else None

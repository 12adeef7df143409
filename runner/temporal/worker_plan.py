"""Which temporalio Workers ``flowctl worker`` runs, and what to change when the registry does.

``select_workers`` turns the selected ``temporal.worker`` revisions into WorkerSpecs (one
per client and task queue). ``plan_reload`` compares the specs being served with the ones
the registry now asks for: start a new task queue, drain a removed one, restart one whose
options or versioning changed. What a live connection cannot pick up (a connected client's
address, namespace, TLS or credentials) is reported as needing a process restart. Pure: no
Temporal, no I/O, so the planning is tested without a server.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from registry.errors import FlowError
from registry.revision import Revision

__all__ = [
    "CLIENT_KIND",
    "WORKER_KIND",
    "ClientChange",
    "ReloadPlan",
    "WorkerChange",
    "WorkerConfigError",
    "WorkerSpec",
    "connection_fields",
    "plan_reload",
    "select_workers",
]

WORKER_KIND = "temporal.worker"
CLIENT_KIND = "temporal.client"
#: fields of a temporal.client entry that an open connection cannot change
CONNECTION_FIELDS = ("address", "namespace", "identity", "tls", "auth")
#: what WorkerSpec.options may hold: ``worker_options`` names that are temporalio.worker.Worker arguments
WORKER_OPTIONS = ("max_concurrent_workflow_tasks", "max_concurrent_activities", "max_cached_workflows")


class WorkerConfigError(FlowError):
    """The selected worker entries cannot be served as configured."""


@dataclass(frozen=True)
class WorkerSpec:
    """One temporalio Worker to run: a task queue on one client, and the entries that asked for it."""

    client_id: str
    task_queue: str
    worker_ids: tuple[str, ...]
    #: keyword arguments for temporalio.worker.Worker (concurrency, cache size)
    options: Mapping[str, int] = field(default_factory=dict)
    #: ``pinned``: a run keeps the revision it started on; ``auto_upgrade``: runs move to the newest
    versioning: str = "pinned"

    @property
    def key(self) -> tuple[str, str]:
        """What identifies one temporalio Worker: ``(client entry ID, task queue)``."""
        return (self.client_id, self.task_queue)

    def to_dict(self) -> dict[str, Any]:
        return {"client": self.client_id, "task_queue": self.task_queue, "workers": list(self.worker_ids),
                "options": dict(self.options), "versioning": self.versioning}


@dataclass(frozen=True)
class WorkerChange:
    """One step of a reload: ``start``, ``stop`` (drain), ``restart`` (drain, start anew) or ``update``.

    ``update`` only records which entries a served task queue now stands for; the Worker keeps running.
    """

    action: str
    #: the spec to run (start, restart, update) or the one to drain (stop)
    spec: WorkerSpec
    reason: str
    #: the spec served until now (restart, update)
    previous: WorkerSpec | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "spec": self.spec.to_dict(), "reason": self.reason,
                "previous": self.previous.to_dict() if self.previous else None}


@dataclass(frozen=True)
class ClientChange:
    """A connected client entry whose connection settings changed: only a restart applies them."""

    client_id: str
    fields: tuple[str, ...]

    @property
    def message(self) -> str:
        return (f"{self.client_id} changed its {', '.join(self.fields)}; restart the worker to use the new "
                "settings (the open connection keeps serving until then)")

    def to_dict(self) -> dict[str, Any]:
        return {"client": self.client_id, "fields": list(self.fields), "message": self.message}


@dataclass(frozen=True)
class ReloadPlan:
    """What a running worker does about a new registry state."""

    changes: tuple[WorkerChange, ...] = ()
    #: connected clients whose settings changed (logged as needing a restart)
    clients: tuple[ClientChange, ...] = ()
    #: ``--worker`` entries no longer in the registry (their task queues are drained)
    missing: tuple[str, ...] = ()
    #: the new worker set is invalid: nothing changes, the current set keeps serving
    error: WorkerConfigError | None = None

    def actions(self, action: str) -> list[WorkerChange]:
        """The changes of one kind (``start``, ``stop``, ``restart``, ``update``)."""
        return [c for c in self.changes if c.action == action]

    def to_dict(self) -> dict[str, Any]:
        return {"changes": [c.to_dict() for c in self.changes], "clients": [c.to_dict() for c in self.clients],
                "missing": list(self.missing),
                "error": None if self.error is None else {"message": self.error.message, "hint": self.error.hint}}


def select_workers(workers: Iterable[Revision], worker_ids: Sequence[str] = ()) -> tuple[list[WorkerSpec], list[str]]:
    """The specs for the named worker entries (all when none named), and the named IDs not in ``workers``.

    Raises WorkerConfigError when the selected entries cannot be served together.
    """
    by_id = {rev.entry_id: rev for rev in workers}
    missing = [w for w in worker_ids if w not in by_id]
    selected = [by_id[w] for w in dict.fromkeys(worker_ids) if w in by_id] if worker_ids else list(by_id.values())
    specs: dict[tuple[str, str], WorkerSpec] = {}
    for rev in selected:
        client_id = rev.ref(rev.data.get("client"))
        if not client_id:
            raise WorkerConfigError(f"{rev.entry_id} has no `client`", hint="name a temporal.client entry")
        spec = WorkerSpec(client_id, rev.task_queue, (rev.entry_id,), _worker_options(rev), _versioning(rev))
        shared = specs.get(spec.key)
        if shared is None:
            specs[spec.key] = spec
            continue
        if spec.versioning != shared.versioning:
            raise WorkerConfigError(
                f"{rev.entry_id} and {shared.worker_ids[0]} serve task queue {spec.task_queue!r} with different "
                f"versioning ({spec.versioning} vs {shared.versioning})",
                hint="give workers that share a task queue the same `versioning`")
        specs[spec.key] = dataclasses.replace(shared, worker_ids=(*shared.worker_ids, rev.entry_id))
    return list(specs.values()), missing


def connection_fields(client: Revision) -> dict[str, Any]:
    """The settings of a client entry that an open connection was made with (as written, ``${env:…}`` kept)."""
    return {name: client.data.get(name) for name in CONNECTION_FIELDS}


def plan_reload(serving: Iterable[WorkerSpec], workers: Iterable[Revision], worker_ids: Sequence[str] = (), *,
                clients: Mapping[str, Revision] | None = None,
                connected: Mapping[str, Mapping[str, Any]] | None = None) -> ReloadPlan:
    """Compare the specs being served with what the registry's worker entries ask for now.

    ``clients``: the registry's temporal.client revisions by ID; ``connected``: the
    ``connection_fields`` each client this process connected itself was opened with.
    """
    client_changes = tuple(_client_changes(clients or {}, connected or {}))
    try:
        wanted, missing = select_workers(workers, worker_ids)
    except WorkerConfigError as error:
        return ReloadPlan(clients=client_changes, error=error)
    old = {spec.key: spec for spec in serving}
    new = {spec.key: spec for spec in wanted}
    changes = [WorkerChange("stop", spec, _stop_reason(spec, wanted)) for key, spec in old.items()
               if key not in new]
    for key, spec in new.items():
        before = old.get(key)
        if before is None:
            changes.append(WorkerChange("start", spec, _start_reason(spec, old.values())))
        elif (before.options, before.versioning) != (spec.options, spec.versioning):
            changes.append(WorkerChange("restart", spec, _restart_reason(before, spec), before))
        elif before.worker_ids != spec.worker_ids:
            changes.append(WorkerChange("update", spec, f"entries {','.join(spec.worker_ids)} "
                                                        f"(were {','.join(before.worker_ids)})", before))
    return ReloadPlan(tuple(changes), client_changes, tuple(missing))


def _client_changes(clients: Mapping[str, Revision],
                    connected: Mapping[str, Mapping[str, Any]]) -> Iterable[ClientChange]:
    for client_id, opened_with in sorted(connected.items()):
        current = clients.get(client_id)
        if current is None:
            continue  # removed: the workers that used it are stopped (or refused) by the worker plan
        now = connection_fields(current)
        changed = tuple(name for name in CONNECTION_FIELDS if now.get(name) != opened_with.get(name))
        if changed:
            yield ClientChange(client_id, changed)


def _start_reason(spec: WorkerSpec, old: Iterable[WorkerSpec]) -> str:
    return _moves(spec, old, "moved from", "new entry {}")


def _stop_reason(spec: WorkerSpec, wanted: Iterable[WorkerSpec]) -> str:
    return _moves(spec, wanted, "moved to", "{} was removed from the registry")


def _moves(spec: WorkerSpec, others: Iterable[WorkerSpec], moved: str, alone: str) -> str:
    """Why each worker entry of ``spec`` is where it is relative to ``others`` (``alone``: in none of them)."""
    where = {worker_id: other for other in others for worker_id in other.worker_ids}
    reasons = []
    for worker_id in spec.worker_ids:
        other = where.get(worker_id)
        if other is None:
            reasons.append(alone.format(worker_id))
        elif other.task_queue != spec.task_queue:
            reasons.append(f"{worker_id} {moved} task queue {other.task_queue}")
        else:
            reasons.append(f"{worker_id} {moved} client {other.client_id}")
    return "; ".join(reasons)


def _restart_reason(before: WorkerSpec, after: WorkerSpec) -> str:
    reasons = []
    if before.versioning != after.versioning:
        reasons.append(f"versioning {before.versioning} -> {after.versioning}")
    if before.options != after.options:
        reasons.append(f"worker_options {_options_text(before.options)} -> {_options_text(after.options)}")
    return "; ".join(reasons)


def _options_text(options: Mapping[str, int]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(options.items())) or "defaults"


def _versioning(rev: Revision) -> str:
    return "auto_upgrade" if rev.data.get("versioning") == "auto_upgrade" else "pinned"


def _worker_options(rev: Revision) -> dict[str, int]:
    raw = rev.data.get("worker_options") or {}
    return {k: int(v) for k, v in raw.items()
            if k in WORKER_OPTIONS and isinstance(v, int | float) and float(v).is_integer()}  # 8.0 is 8

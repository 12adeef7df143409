"""Reconcile ``temporal.schedule`` entries with the cluster: ``flowctl diff``, ``apply`` and ``dev``.

For each schedule an entry wants, the plan describes the schedule on its client:

- not there: **create** it, its own memo marking it as flowctl's (``flowctl.schedule: {entry: ID}``);
- there, but not created by flowctl (or owned by another entry): **conflict**, left alone;
- there: compare the part digests the last apply wrote into its runs' memo with the entry's
  (``registry.schedules.DesiredSchedule``): **unchanged**, or **update** of the parts that changed
  only. An operator's pause (``flowctl schedule pause``) is kept unless the entry's ``paused`` or
  ``note`` changed.

Entries gone from the tree are **kept** without ``--prune`` and their schedules **deleted** with it.
flowctl's schedules that no entry wants any more (an entry whose ``schedule_id`` changed, or one
pruned while the cluster was unreachable) are found by listing each client's schedules: deleted when
their entry moved or with ``--prune``, else kept.

Applying runs the calls in plan order and stops at the first failure: the report says which
schedules were changed, which call failed and which were not attempted. Every plan starts from the
cluster's state, so applying again converges, and an unchanged tree makes no changing call.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from temporalio.client import (
    Client,
    Schedule,
    ScheduleDescription,
    ScheduleHandle,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.exceptions import TemporalError
from temporalio.service import RPCError, RPCStatusCode

from registry.errors import FlowError
from registry.revision import Revision
from registry.schedules import (
    PARTS,
    SCHEDULE_MEMO,
    DesiredSchedule,
    ScheduleAction,
    ScheduleChange,
    ScheduleRef,
    ScheduleReport,
    ScheduleRequest,
)
from runner.client.connect import connect
from runner.schedules.spec import applied_marker, owner_of, schedule_of

__all__ = ["UNREACHABLE_HINT", "changed_parts", "reconcile"]

UNREACHABLE_HINT = ("start Temporal (`flowctl dev`) or fix the temporal.client entry, then apply again: apply "
                    "compares every schedule with the cluster, so it converges")
#: What a kept schedule's line says.
KEPT_NOTE = "gone from the tree; apply --prune deletes it"


@dataclass(frozen=True)
class _Step:
    """One schedule's planned change, and the call that makes it (None: nothing to call)."""

    change: ScheduleChange
    call: Callable[[], Awaitable[object]] | None = None


async def reconcile(request: ScheduleRequest, *, apply: bool,
                    clients: Mapping[str, Client] | None = None) -> ScheduleReport:
    """Plan the request against the cluster (``apply`` False: describe and list only), or plan and apply it.

    ``clients``: connections by temporal.client entry ID (``flowctl dev``, tests); others are connected.
    """
    connections = _Connections(request.clients, clients or {})
    try:
        steps = await _plan(request, connections)
    except FlowError as exc:  # a plan says what the registry can tell; an apply made no call
        return ScheduleReport(changes=request.problems if apply else request.without_cluster(), applied=apply,
                              error=exc.message, hint=exc.hint or UNREACHABLE_HINT)
    if not apply:
        return ScheduleReport(changes=(*request.problems, *(step.change for step in steps)))
    done: list[ScheduleChange] = list(request.problems)
    failed = False
    for step in steps:
        change = step.change
        if step.call is None:
            conflict = change.action is ScheduleAction.CONFLICT
            done.append(dataclasses.replace(change, status="failed" if conflict else "done"))
        elif failed:
            done.append(dataclasses.replace(change, status="skipped"))
        else:
            try:
                await step.call()
            except (RPCError, TemporalError, FlowError, RuntimeError, ValueError) as exc:
                failed = True
                done.append(dataclasses.replace(change, status="failed", error=_message(exc)))
            else:
                done.append(dataclasses.replace(change, status="done"))
    return ScheduleReport(changes=tuple(done), applied=True)


def _message(exc: BaseException) -> str:
    if isinstance(exc, FlowError):
        return exc.message
    if isinstance(exc, RPCError):
        return f"{exc.status.name if exc.status else 'error'}: {exc.message}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class _Connections:
    """One client per temporal.client entry, connected on first use."""

    def __init__(self, entries: Mapping[str, Revision], given: Mapping[str, Client]) -> None:
        self.entries = entries
        self.clients = dict(given)

    async def get(self, client_id: str) -> Client:
        client = self.clients.get(client_id)
        if client is None:
            entry = self.entries.get(client_id)
            if entry is None:
                raise FlowError(f"the schedules' client {client_id or '(none)'} is not an entry",
                                hint="apply the temporal.client entry the schedule (or its workflow's worker) names")
            client = self.clients[client_id] = await connect(entry)
        return client


async def _plan(request: ScheduleRequest, connections: _Connections) -> list[_Step]:
    steps: list[_Step] = []
    accounted: dict[str, set[str]] = {}
    for desired in request.desired:
        steps.append(await _desired_step(desired, connections))
        accounted.setdefault(desired.client_id, set()).add(desired.schedule_id)
    for ref in request.kept:
        steps.append(_Step(_change(ref, ScheduleAction.KEPT, note=KEPT_NOTE)))
        accounted.setdefault(ref.client_id, set()).add(ref.schedule_id)
    for ref in request.removed:
        steps.append(await _removed_step(ref, connections))
        accounted.setdefault(ref.client_id, set()).add(ref.schedule_id)
    moved = {desired.entry_id: desired.schedule_id for desired in request.desired}
    for client_id in sorted(c for c in accounted if c):
        steps += await _orphans(client_id, accounted[client_id], request, moved, connections)
    return steps


def _change(ref: ScheduleRef | DesiredSchedule, action: ScheduleAction, *, parts: tuple[str, ...] = (),
            note: str = "", error: str = "", applied_revision: str | None = None) -> ScheduleChange:
    return ScheduleChange(ref.schedule_id, ref.entry_id, ref.client_id, action, parts=parts, note=note, error=error,
                          revision=ref.revision if isinstance(ref, DesiredSchedule) else None,
                          applied_revision=applied_revision)


async def _desired_step(desired: DesiredSchedule, connections: _Connections) -> _Step:
    client = await connections.get(desired.client_id)
    handle = client.get_schedule_handle(desired.schedule_id)
    description = await _describe(handle)
    if description is None:
        return _Step(_change(desired, ScheduleAction.CREATE), functools.partial(
            client.create_schedule, desired.schedule_id, schedule_of(desired),
            memo={SCHEDULE_MEMO: {"entry": desired.entry_id}}))
    owner = await owner_of(description)
    if owner != desired.entry_id:
        why = "was not created by flowctl" if owner is None else f"is the schedule of the entry {owner}"
        return _Step(_change(desired, ScheduleAction.CONFLICT, error=f"a schedule {desired.schedule_id} exists and "
                             f"{why}: left alone (give the entry another `schedule_id`)"))
    marker = await applied_marker(client, description)
    parts = changed_parts(marker, desired)
    revision = marker.get("revision") if isinstance(marker.get("revision"), str) else None
    note = _live_state(description, desired) if "state" not in parts else ""
    if not parts:
        return _Step(_change(desired, ScheduleAction.UNCHANGED, note=note, applied_revision=revision))
    return _Step(_change(desired, ScheduleAction.UPDATE, parts=parts, note=note, applied_revision=revision),
                 functools.partial(_update, handle, desired, parts))


def changed_parts(marker: Mapping[str, object], desired: DesiredSchedule) -> tuple[str, ...]:
    """The parts whose digest differs from what the last apply recorded (``marker``: the runs' memo mark)."""
    applied = marker.get("parts")
    recorded = applied if isinstance(applied, Mapping) else {}
    wanted = desired.digests()
    return tuple(part for part in PARTS if recorded.get(part) != wanted[part])


def _live_state(description: ScheduleDescription, desired: DesiredSchedule) -> str:
    """Why the cluster's pause state is not the entry's: an operator changed it, and apply keeps that."""
    live = description.schedule.state
    if live.paused == desired.state["paused"]:
        return ""
    said = f": {live.note!r}" if live.note else ""
    return (f"{'paused' if live.paused else 'unpaused'} on the cluster{said}; kept until the entry's "
            "`paused` or `note` changes")


async def _update(handle: ScheduleHandle, desired: DesiredSchedule, parts: tuple[str, ...]) -> None:
    """Replace the parts that changed; the action always (its memo records what was applied)."""
    wanted = schedule_of(desired)

    def updated(current: ScheduleUpdateInput) -> ScheduleUpdate:
        live = current.description.schedule
        return ScheduleUpdate(Schedule(action=wanted.action, spec=wanted.spec if "spec" in parts else live.spec,
                                       policy=wanted.policy if "policy" in parts else live.policy,
                                       state=wanted.state if "state" in parts else live.state))

    await handle.update(updated)


async def _removed_step(ref: ScheduleRef, connections: _Connections) -> _Step:
    """The schedule of an entry this apply deletes (--prune)."""
    if not ref.client_id:
        return _Step(_change(ref, ScheduleAction.KEPT, note="its client is not known: nothing to delete"))
    handle = (await connections.get(ref.client_id)).get_schedule_handle(ref.schedule_id)
    description = await _describe(handle)
    if description is None:
        return _Step(_change(ref, ScheduleAction.UNCHANGED, note="its entry is deleted; the schedule is gone already"))
    if await owner_of(description) != ref.entry_id:
        return _Step(_change(ref, ScheduleAction.KEPT, note="not created by flowctl for this entry: left alone"))
    return _Step(_change(ref, ScheduleAction.DELETE, note="its entry is deleted (--prune)"), handle.delete)


async def _orphans(client_id: str, accounted: set[str], request: ScheduleRequest, moved: Mapping[str, str],
                   connections: _Connections) -> list[_Step]:
    """flowctl's schedules on a client, of entries in the tree's namespaces, that no entry accounts for."""
    client = await connections.get(client_id)
    found: list[_Step] = []
    try:
        listed = [schedule async for schedule in await client.list_schedules()]
    except RPCError as exc:
        raise FlowError(f"cannot list the schedules of namespace {client.namespace!r} ({client_id}): {exc.message}",
                        hint=UNREACHABLE_HINT) from None
    for schedule in sorted(listed, key=lambda s: s.id):
        owner = await owner_of(schedule)
        if schedule.id in accounted or owner is None or owner.split(":", 1)[0] not in request.namespaces:
            continue
        handle = client.get_schedule_handle(schedule.id)
        description = await _describe(handle)  # the list lags behind: deleted ones are still listed a while
        if description is None or await owner_of(description) != owner:
            continue
        ref = ScheduleRef(owner, schedule.id, client_id)
        if owner in moved:
            found.append(_Step(_change(ref, ScheduleAction.DELETE, note=f"its entry's schedule is {moved[owner]} now"),
                               handle.delete))
        elif request.prune:
            found.append(_Step(_change(ref, ScheduleAction.DELETE, note="its entry is not in the registry (--prune)"),
                               handle.delete))
        else:
            found.append(_Step(_change(ref, ScheduleAction.KEPT, note="its entry is not in the registry; apply --prune "
                                                                      "deletes it")))
    return found


async def _describe(handle: ScheduleHandle) -> ScheduleDescription | None:
    """The schedule's description, None when there is no such schedule."""
    try:
        return await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise FlowError(f"cannot describe schedule {handle.id}: {exc.message}", hint=UNREACHABLE_HINT) from None

"""``flowctl schedule list|describe|trigger|pause|unpause|backfill``: operating the schedules on the cluster.

``ID`` is a schedule entry's ID (or its bare name, when only one namespace has it) or a schedule ID;
the client is ``--client``, else the schedule entry's (its own ``client``, or its workflow's worker's),
else the registry's only one. Each call opens the registry (never creating it), connects, makes its
calls and returns a result with ``to_dict()`` that ``runner.render`` prints.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from temporalio.client import (
    Client,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    ScheduleBackfill,
    ScheduleCalendarSpec,
    ScheduleDescription,
    ScheduleHandle,
    ScheduleRange,
    ScheduleSpec,
    WorkflowExecutionStatus,
    WorkflowFailureError,
)
from temporalio.service import RPCError, RPCStatusCode

from registry.durations import parse_duration
from registry.errors import FlowError
from registry.open_store import open_store
from registry.revision import Revision
from registry.schedule_spec import CALENDAR_FIELDS, SpecError, parse_timestamp
from registry.schedules import SCHEDULE_KIND, schedule_ref
from runner.client.connect import connect, namespace_missing, rpc_error
from runner.client.executions import client_entry
from runner.revision_source import StoreRevisionSource
from runner.schedules.results import ListedSchedule, RecentAction, ScheduleDetails, ScheduleList, ScheduleOperation
from runner.schedules.spec import OVERLAP_POLICIES, applied_marker, owner_of
from runner.temporal.failures import failure_from_temporal

__all__ = ["describe", "list_schedules", "operate", "parse_time"]

#: How long ``trigger`` waits to see the run it started.
TRIGGER_WAIT = 5.0
T = TypeVar("T")


@dataclass(frozen=True)
class _Target:
    """A schedule ID resolved against the registry: its entry (if any) and the client to reach it with."""

    schedule_id: str
    entry_id: str | None
    client: Revision
    current_revision: str | None = None


@dataclass
class _Registry:
    """What the registry says about schedules, read once."""

    entries: dict[str, Revision]
    schedules: list[Revision] = field(default_factory=list)
    only_client: Callable[[], Revision] | None = None


def _read(registry_url: str | None) -> _Registry:
    with open_store(registry_url, create=False) as store:
        entries = {rev.entry_id: rev for rev in store.list_current()}
        source = StoreRevisionSource(store)
        try:
            only: Revision | None = client_entry(source)
            problem: FlowError | None = None
        except FlowError as exc:
            only, problem = None, exc

    def only_client() -> Revision:
        if only is None:
            assert problem is not None
            raise FlowError(problem.message, hint="name the client with --client ID")
        return only

    return _Registry(entries, sorted((r for r in entries.values() if r.kind == SCHEDULE_KIND),
                                     key=lambda r: r.entry_id), only_client)


def _client(registry: _Registry, client_id: str | None) -> Revision | None:
    if not client_id:
        return None
    found = registry.entries.get(client_id)
    if found is None or found.kind != "temporal.client":
        raise FlowError(f"--client {client_id} is not a temporal.client entry of the registry",
                        hint="list the entries with `flowctl registry list`")
    return found


def _target(registry: _Registry, wanted: str, client_id: str | None) -> _Target:
    """``wanted`` as a schedule entry ID, bare entry name or schedule ID; else a schedule ID as given."""
    named = _client(registry, client_id)
    matches = [rev for rev in registry.schedules if wanted in (rev.entry_id, schedule_ref(rev, registry.entries)
                                                               .schedule_id)]
    matches = matches or [rev for rev in registry.schedules if rev.name == wanted]
    if len(matches) > 1:
        raise FlowError(f"{wanted!r} names several schedule entries ({', '.join(r.entry_id for r in matches)})",
                        hint="give the full entry ID namespace:name")
    if matches:
        ref = schedule_ref(matches[0], registry.entries)
        client = named or registry.entries.get(ref.client_id)
        if client is None:
            raise FlowError(f"{ref.entry_id}: its client {ref.client_id or '(unknown)'} is not in the registry",
                            hint="apply its temporal.client entry, or pass --client ID")
        return _Target(ref.schedule_id, ref.entry_id, client, matches[0].digest)
    assert registry.only_client is not None
    return _Target(wanted, None, named or registry.only_client())


def _connected(client_revision: Revision, call: Callable[[Client], Awaitable[T]]) -> T:
    async def connected() -> T:
        return await call(await connect(client_revision))

    return asyncio.run(connected())


async def _describe(handle: ScheduleHandle, client: Client) -> ScheduleDescription:
    try:
        return await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND and not namespace_missing(exc):
            raise FlowError(f"no schedule {handle.id!r} in namespace {client.namespace!r}",
                            hint="list flowctl's schedules with `flowctl schedule list`; `flowctl apply` creates "
                                 "those of temporal.schedule entries") from None
        raise rpc_error(exc, f"cannot describe schedule {handle.id}") from None


# ---------------------------------------------------------------------- list


def list_schedules(registry_url: str | None, client_id: str | None) -> ScheduleList:
    """``flowctl schedule list``: flowctl's schedules of the registry's namespaces on ``--client`` (else on the
    clients of the registry's schedule entries, else on its only client), and schedule entries that have none."""
    registry = _read(registry_url)
    named = _client(registry, client_id)
    refs = [schedule_ref(rev, registry.entries) for rev in registry.schedules]
    refs = [ref for ref in refs if named is None or ref.client_id == named.entry_id]
    clients = [named] if named else [registry.entries[c] for c in sorted({r.client_id for r in refs})
                                     if c in registry.entries]
    if not clients:
        assert registry.only_client is not None
        clients = [registry.only_client()]
    current = {rev.entry_id: rev.digest for rev in registry.schedules}
    namespaces = {rev.namespace for rev in registry.entries.values()}  # another registry's schedules are not listed

    async def gather() -> list[ListedSchedule]:
        found: list[ListedSchedule] = []
        for client_revision in clients:
            client = await connect(client_revision)
            mine = [ref for ref in refs if ref.client_id == client_revision.entry_id]
            ids = {ref.schedule_id for ref in mine}
            try:
                ids |= {s.id async for s in await client.list_schedules()
                        if (await owner_of(s) or ":").split(":", 1)[0] in namespaces}
            except RPCError as exc:
                raise rpc_error(exc, f"cannot list the schedules of {client_revision.entry_id}") from None
            for schedule_id in sorted(ids):
                found.append(await _listed(client, client_revision.entry_id, schedule_id, mine, current))
        return found

    return ScheduleList(tuple(asyncio.run(gather())))


async def _listed(client: Client, client_id: str, schedule_id: str, refs: Sequence[Any],
                  current: Mapping[str, str]) -> ListedSchedule:
    entry_id = next((ref.entry_id for ref in refs if ref.schedule_id == schedule_id), None)
    try:
        description = await client.get_schedule_handle(schedule_id).describe()
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND or namespace_missing(exc):
            raise rpc_error(exc, f"cannot describe schedule {schedule_id}") from None
        return ListedSchedule(schedule_id, entry_id, client_id, "", False, "", None, None,
                              current.get(entry_id or ""), missing=True)
    owner = await owner_of(description)
    entry_id = entry_id or owner
    action = description.schedule.action
    marker = await applied_marker(client, description)
    state = description.schedule.state
    next_times = description.info.next_action_times
    return ListedSchedule(schedule_id, entry_id, client_id,
                          action.workflow if isinstance(action, ScheduleActionStartWorkflow) else "",
                          state.paused, state.note or "", next_times[0].isoformat() if next_times else None,
                          marker.get("revision"), current.get(entry_id or ""))


# ---------------------------------------------------------------------- describe


def describe(registry_url: str | None, client_id: str | None, schedule: str, *, next_count: int = 5) -> ScheduleDetails:
    """``flowctl schedule describe``: spec, policies, state, the next ``next_count`` times and the recent runs."""
    target = _target(_read(registry_url), schedule, client_id)

    async def call(client: Client) -> ScheduleDetails:
        description = await _describe(client.get_schedule_handle(target.schedule_id), client)
        schedule_ = description.schedule
        action = schedule_.action
        start = action if isinstance(action, ScheduleActionStartWorkflow) else None
        info = description.info
        recent = await asyncio.gather(*(_recent(client, result.action, result.scheduled_at, result.started_at)
                                        for result in info.recent_actions
                                        if isinstance(result.action, ScheduleActionExecutionStartWorkflow)))
        policy = schedule_.policy
        return ScheduleDetails(
            target.schedule_id, target.entry_id or await owner_of(description), target.client.entry_id,
            schedule_.state.paused, schedule_.state.note or "", start.workflow if start else "",
            start.task_queue if start else "", start.id if start else "", spec_text(schedule_.spec),
            policy.overlap.name.lower(), _duration(policy.catchup_window) if policy.catchup_window else None,
            policy.pause_on_failure, info.num_actions, info.num_actions_skipped_overlap,
            info.num_actions_missed_catchup_window, tuple(t.isoformat() for t in info.next_action_times[:next_count]),
            tuple(reversed(recent)), (await applied_marker(client, description)).get("revision"),
            target.current_revision, info.created_at.isoformat(),
            info.last_updated_at.isoformat() if info.last_updated_at else None)

    return _connected(target.client, call)


async def _recent(client: Client, execution: ScheduleActionExecutionStartWorkflow, scheduled: datetime,
                  started: datetime) -> RecentAction:
    """One run a schedule started, with its status and, once closed, its result or failure."""
    action = RecentAction(scheduled.isoformat(), started.isoformat(), execution.workflow_id,
                          execution.first_execution_run_id, "gone")
    handle = client.get_workflow_handle(execution.workflow_id, run_id=execution.first_execution_run_id)
    try:
        status = (await handle.describe()).status
        if status == WorkflowExecutionStatus.COMPLETED:
            return dataclasses.replace(action, status="completed", result=await handle.result(follow_runs=False))
        if status is not None and status != WorkflowExecutionStatus.RUNNING:
            await handle.result(follow_runs=False)
        return dataclasses.replace(action, status=status.name.lower() if status else "unknown")
    except WorkflowFailureError as exc:
        failure = failure_from_temporal(exc.cause or exc)
        return dataclasses.replace(action, status=status.name.lower() if status else "failed",
                                   failure=f"{failure.kind}: {failure.message}")
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND and not namespace_missing(exc):
            return action
        raise rpc_error(exc, f"cannot describe run {execution.workflow_id}") from None


def spec_text(spec: ScheduleSpec) -> tuple[str, ...]:
    """A described spec in words, one line per part (the server keeps cron expressions as calendars)."""
    out = [f"cron {expression}" for expression in spec.cron_expressions]
    out += [f"every {_duration(i.every)}" + (f" offset {_duration(i.offset)}" if i.offset else "")
            for i in spec.intervals]
    out += [f"calendar {_calendar_text(c)}" for c in spec.calendars]
    out += [f"skip {_calendar_text(c)}" for c in spec.skip]
    if spec.time_zone_name:
        out.append(f"time zone {spec.time_zone_name}")
    if spec.start_at or spec.end_at:
        out.append(f"from {spec.start_at.isoformat() if spec.start_at else '-'} "
                   f"to {spec.end_at.isoformat() if spec.end_at else '-'}")
    if spec.jitter:
        out.append(f"jitter {_duration(spec.jitter)}")
    return tuple(out)


def _calendar_text(calendar: ScheduleCalendarSpec) -> str:
    shown = []
    for name in CALENDAR_FIELDS:
        ranges: Sequence[ScheduleRange] = getattr(calendar, name)
        low, high = CALENDAR_FIELDS[name][:2]
        text = ",".join(f"{r.start}" + (f"-{r.end}" if r.end > r.start else "") + (f"/{r.step}" if r.step > 1 else "")
                        for r in ranges)
        if not ranges or text in (f"{low}-{high}", f"{low}-{min(high, 6)}" if name == "day_of_week" else ""):
            text = "*"
        shown.append(f"{name}={text}")
    return " ".join(shown) + (f" ({calendar.comment})" if calendar.comment else "")


def _duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    parts = [(seconds // 86400, "d"), (seconds % 86400 // 3600, "h"), (seconds % 3600 // 60, "m"), (seconds % 60, "s")]
    return "".join(f"{n}{unit}" for n, unit in parts if n) or f"{value.total_seconds():g}s"


# ---------------------------------------------------------------------- trigger, pause, unpause, backfill


def operate(registry_url: str | None, client_id: str | None, action: str, schedule: str, *, note: str = "",
            overlap: str | None = None, start: str | None = None, end: str | None = None,
            next_count: int = 5) -> ScheduleOperation | ScheduleDetails:
    """``flowctl schedule trigger|pause|unpause|backfill``: one patch of the schedule (``describe``: no patch)."""
    if action == "describe":
        return describe(registry_url, client_id, schedule, next_count=next_count)
    target = _target(_read(registry_url), schedule, client_id)
    policy = OVERLAP_POLICIES[overlap] if overlap else None
    window = (parse_time(start or "", "--from"), parse_time(end or "", "--to")) if action == "backfill" else None
    if window is not None and window[1] <= window[0]:
        raise FlowError(f"--to {end} is not after --from {start}", hint="the backfill window runs from --from to --to")
    done = ScheduleOperation(action, target.schedule_id, target.entry_id, target.client.entry_id)

    async def call(client: Client) -> ScheduleOperation:
        handle = client.get_schedule_handle(target.schedule_id)
        before = await _describe(handle, client)
        try:
            if action == "trigger":
                await handle.trigger(overlap=policy)
                return await _triggered(handle, client, before.info.num_actions, done)
            if action == "pause":
                await handle.pause(note=note or "paused with flowctl")
            elif action == "unpause":
                await handle.unpause(note=note or "unpaused with flowctl")
            elif action == "backfill" and window is not None:
                await handle.backfill(ScheduleBackfill(window[0], window[1], overlap=policy))
                return dataclasses.replace(done, detail=f"{window[0].isoformat()} to {window[1].isoformat()}"
                                           + (f", overlap {overlap}" if overlap else ""))
            else:
                raise FlowError(f"unknown schedule action {action!r}")
        except RPCError as exc:
            raise rpc_error(exc, f"cannot {action} {target.schedule_id}") from None
        state = (await _describe(handle, client)).schedule.state
        return dataclasses.replace(done, detail=state.note or "", paused=state.paused)

    return _connected(target.client, call)


async def _triggered(handle: ScheduleHandle, client: Client, actions_before: int,
                     done: ScheduleOperation) -> ScheduleOperation:
    """The run a trigger started, once the schedule lists it (within TRIGGER_WAIT seconds; else without it)."""
    deadline = asyncio.get_running_loop().time() + TRIGGER_WAIT
    while asyncio.get_running_loop().time() < deadline:
        info = (await _describe(handle, client)).info
        if info.num_actions > actions_before and info.recent_actions:
            started = info.recent_actions[-1].action
            if isinstance(started, ScheduleActionExecutionStartWorkflow):
                return dataclasses.replace(done, workflow_id=started.workflow_id, run_id=started.first_execution_run_id)
        await asyncio.sleep(0.2)
    return done


def parse_time(text: str, option: str) -> datetime:
    """``now``, a duration ago (``-1h``), or an ISO 8601 time (no offset: UTC), as an aware UTC datetime."""
    text = text.strip()
    if not text:
        raise FlowError(f"{option} is required", hint=f"pass {option} TIME: an ISO 8601 time, `now` or `-1h`")
    if text == "now":
        return datetime.now(UTC)
    if text.startswith("-"):
        return datetime.now(UTC) - parse_duration(text[1:], what=option)
    try:
        return parse_timestamp(text)
    except SpecError as exc:
        raise FlowError(f"{option}: {exc}", hint="write e.g. 2025-01-31T09:00:00Z, `now` or `-2h` (two hours ago)") \
            from None

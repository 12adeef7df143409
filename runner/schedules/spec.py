"""A schedule's plain description (``registry.schedules.DesiredSchedule``) as temporalio's ``Schedule``,
and flowctl's marks read back from a described one.

The runs a schedule starts carry memo ``flowctl.schedule`` (the schedule, its entry, the entry's
revision and the digest of each part, see ``DesiredSchedule.marker``) and, for ``revision: pinned``,
``flowctl.revision``: without it a run executes the revision current when it starts, which the
worker then records (``runner/temporal/workflow.py``). Start options go through the same
translation as ``flowctl run`` (``runner/temporal/options.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleCalendarSpec,
    ScheduleDescription,
    ScheduleIntervalSpec,
    ScheduleListDescription,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
)
from temporalio.common import TypedSearchAttributes

from registry.errors import FlowError
from registry.schedule_spec import CALENDAR_FIELDS
from registry.schedules import SCHEDULE_MEMO, DesiredSchedule
from runner.temporal.memo import REVISION_MEMO
from runner.temporal.options import normalize, start_kwargs

__all__ = ["OVERLAP_POLICIES", "action_of", "applied_marker", "calendar_of", "owner_of", "policy_of", "schedule_of",
           "spec_of", "state_of"]

OVERLAP_POLICIES = {"skip": ScheduleOverlapPolicy.SKIP, "buffer_one": ScheduleOverlapPolicy.BUFFER_ONE,
                    "buffer_all": ScheduleOverlapPolicy.BUFFER_ALL, "cancel_other": ScheduleOverlapPolicy.CANCEL_OTHER,
                    "terminate_other": ScheduleOverlapPolicy.TERMINATE_OTHER,
                    "allow_all": ScheduleOverlapPolicy.ALLOW_ALL}


def schedule_of(desired: DesiredSchedule) -> Schedule:
    """The whole schedule an entry asks for (what ``create`` sends)."""
    return Schedule(action=action_of(desired), spec=spec_of(desired.spec), policy=policy_of(desired.policy),
                    state=state_of(desired.state))


def spec_of(spec: Mapping[str, Any]) -> ScheduleSpec:
    """``normalized_spec`` data as a ScheduleSpec (cron expressions go as written: the server compiles them)."""
    return ScheduleSpec(
        calendars=[calendar_of(c) for c in spec["calendars"]],
        intervals=[ScheduleIntervalSpec(every=timedelta(seconds=i["every"]),
                                        offset=timedelta(seconds=i["offset"]) if i["offset"] else None)
                   for i in spec["intervals"]],
        cron_expressions=list(spec["cron"]),
        skip=[calendar_of(c) for c in spec["skip"]],
        start_at=datetime.fromisoformat(spec["start_at"]) if spec["start_at"] else None,
        end_at=datetime.fromisoformat(spec["end_at"]) if spec["end_at"] else None,
        jitter=timedelta(seconds=spec["jitter"]) if spec["jitter"] else None,
        time_zone_name=spec["timezone"] or None)


def calendar_of(calendar: Mapping[str, Any]) -> ScheduleCalendarSpec:
    """One normalized calendar entry (ranges per field) as a ScheduleCalendarSpec."""
    ranges = {field: tuple(ScheduleRange(start, end, step) for start, end, step in calendar[field])
              for field in CALENDAR_FIELDS}
    return ScheduleCalendarSpec(**ranges, comment=calendar["comment"] or None)


def action_of(desired: DesiredSchedule) -> ScheduleActionStartWorkflow:
    """Start the workflow type on its task queue with the input, options and flowctl's memo marks."""
    action = desired.action
    merged = normalize({**action["options"], "memo": action["memo"],
                        "search_attributes": action["search_attributes"]})
    kwargs = start_kwargs(merged, child=False)
    memo: dict[str, Any] = {**action["memo"], SCHEDULE_MEMO: desired.marker()}
    if action["revision"]:
        memo[REVISION_MEMO] = action["revision"]
    return ScheduleActionStartWorkflow(
        action["workflow_type"], args=list(action["args"]), id=action["id"], task_queue=action["task_queue"],
        execution_timeout=kwargs.get("execution_timeout"), run_timeout=kwargs.get("run_timeout"),
        task_timeout=kwargs.get("task_timeout"), retry_policy=kwargs.get("retry_policy"), memo=memo,
        typed_search_attributes=kwargs.get("search_attributes", TypedSearchAttributes.empty))


def policy_of(policy: Mapping[str, Any]) -> SchedulePolicy:
    overlap = OVERLAP_POLICIES.get(policy["overlap"])
    if overlap is None:
        raise FlowError(f"unknown overlap policy {policy['overlap']!r}",
                        hint=f"use one of {', '.join(OVERLAP_POLICIES)}")
    catchup = policy["catchup_window"]
    return SchedulePolicy(overlap=overlap, catchup_window=timedelta(seconds=catchup) if catchup else None,
                          pause_on_failure=bool(policy["pause_on_failure"]))


def state_of(state: Mapping[str, Any]) -> ScheduleState:
    return ScheduleState(note=state["note"] or None, paused=bool(state["paused"]))


async def owner_of(description: ScheduleDescription | ScheduleListDescription) -> str | None:
    """The entry ID in a schedule's own memo: set when flowctl created it (None: flowctl did not)."""
    try:
        mark = (await description.memo()).get(SCHEDULE_MEMO)
    except Exception:  # a memo flowctl cannot decode is not flowctl's
        return None
    entry = mark.get("entry") if isinstance(mark, Mapping) else None
    return entry if isinstance(entry, str) else None


async def applied_marker(client: Client, description: ScheduleDescription) -> dict[str, Any]:
    """What the last apply wrote into the schedule's runs' memo (``DesiredSchedule.marker``; {} when nothing)."""
    action = description.schedule.action
    memo = action.memo if isinstance(action, ScheduleActionStartWorkflow) else None
    payload = memo.get(SCHEDULE_MEMO) if memo else None
    if payload is None:
        return {}
    try:
        decoded = (await client.data_converter.decode([payload]))[0]
    except Exception:
        return {}
    return dict(decoded) if isinstance(decoded, Mapping) else {}

"""A schedule entry's plain description as temporalio's Schedule (no server), and which parts apply updates."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.client import ScheduleCalendarSpec, ScheduleOverlapPolicy, ScheduleRange
from temporalio.common import RetryPolicy

from registry.errors import FlowError
from registry.loader import load_project
from registry.revision import build_revisions
from registry.schedules import SCHEDULE_MEMO, DesiredSchedule, desired_schedule
from runner.schedules.reconcile import changed_parts
from runner.schedules.spec import action_of, calendar_of, policy_of, schedule_of, spec_of, state_of
from runner.temporal.memo import REVISION_MEMO
from tests.runner.schedules import schedule_project

NIGHTLY = """\
  - name: nightly
    kind: temporal.schedule
    workflow: report
    input: {n: 7}
    revision: pinned
    cron: ["0 2 * * *", "TZ=UTC @hourly"]
    interval: [{every: 1h, offset: 5m}]
    calendar: [{hour: "9-17/2", day_of_week: "mon-fri", comment: office hours}]
    skip: [{month: dec, day_of_month: 25, hour: "*"}]
    timezone: Europe/Berlin
    start_at: 2025-01-01T00:00:00Z
    end_at: 2026-01-01T00:00:00Z
    jitter: 30s
    overlap: buffer_all
    catchup_window: 6h
    pause_on_failure: true
    paused: true
    note: until the data is there
    options:
      temporal.workflow.id: nightly-report
      temporal.workflow.task_queue: elsewhere
      temporal.workflow.retry_policy: {maximum_attempts: 3, initial_interval: 2s}
    memo: {team: ops}
"""


def nightly(tmp_path: Path) -> DesiredSchedule:
    entries, _ = schedule_project(tmp_path, NIGHTLY, namespace="app")
    revisions = build_revisions(load_project([entries]))
    return desired_schedule(revisions["app:nightly"], revisions)


def test_the_spec_as_temporalio_objects(tmp_path: Path) -> None:
    spec = spec_of(nightly(tmp_path).spec)
    assert spec.cron_expressions == ["0 2 * * *", "TZ=UTC @hourly"]  # the server compiles them
    assert [(i.every, i.offset) for i in spec.intervals] == [(timedelta(hours=1), timedelta(minutes=5))]
    assert spec.calendars == [ScheduleCalendarSpec(
        second=(ScheduleRange(0),), minute=(ScheduleRange(0),), hour=(ScheduleRange(9, 17, 2),),
        day_of_month=(ScheduleRange(1, 31),), month=(ScheduleRange(1, 12),), year=(),
        day_of_week=(ScheduleRange(1, 5),), comment="office hours")]
    assert spec.skip[0].month == (ScheduleRange(12),) and spec.skip[0].hour == (ScheduleRange(0, 23),)
    assert (spec.start_at, spec.end_at) == (datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
    assert (spec.jitter, spec.time_zone_name) == (timedelta(seconds=30), "Europe/Berlin")


def test_a_calendar_of_defaults_is_midnight_every_day() -> None:
    every_day = calendar_of({"second": [[0, 0, 1]], "minute": [[0, 0, 1]], "hour": [[0, 0, 1]],
                             "day_of_month": [[1, 31, 1]], "month": [[1, 12, 1]], "year": [],
                             "day_of_week": [[0, 6, 1]], "comment": ""})
    assert every_day == ScheduleCalendarSpec(day_of_week=(ScheduleRange(0, 6),))


def test_the_action_starts_the_workflow_with_flowctls_memo(tmp_path: Path) -> None:
    desired = nightly(tmp_path)
    action = action_of(desired)
    assert (action.workflow, action.id, action.task_queue, list(action.args)) == (
        "app:report", "nightly-report", "elsewhere", [{"n": 7}])
    assert action.execution_timeout == timedelta(hours=1)  # the workflow's own option
    assert action.retry_policy == RetryPolicy(maximum_attempts=3, initial_interval=timedelta(seconds=2))
    assert action.memo is not None
    assert action.memo["team"] == "ops" and action.memo[SCHEDULE_MEMO] == desired.marker()
    assert action.memo[REVISION_MEMO] == desired.action["revision"], "revision: pinned"
    current = dataclasses.replace(desired, action={**desired.action, "revision": None})
    assert action_of(current).memo is not None and REVISION_MEMO not in (action_of(current).memo or {})


def test_policy_and_state(tmp_path: Path) -> None:
    schedule = schedule_of(nightly(tmp_path))
    assert schedule.policy.overlap is ScheduleOverlapPolicy.BUFFER_ALL
    assert schedule.policy.catchup_window == timedelta(hours=6) and schedule.policy.pause_on_failure
    assert (schedule.state.paused, schedule.state.note) == (True, "until the data is there")
    assert state_of({"paused": False, "note": ""}).note is None
    with pytest.raises(FlowError, match="unknown overlap policy 'sometimes'"):
        policy_of({"overlap": "sometimes", "catchup_window": None, "pause_on_failure": False})


def test_a_memo_key_of_flowctls_own_is_refused(tmp_path: Path) -> None:
    desired = nightly(tmp_path)
    sneaky = dataclasses.replace(desired, action={**desired.action, "memo": {"flowctl.revision": "abc"}})
    with pytest.raises(FlowError, match="reserved for flowctl"):
        action_of(sneaky)


def test_apply_updates_the_parts_whose_digest_differs_from_the_applied_ones(tmp_path: Path) -> None:
    desired = nightly(tmp_path)
    assert changed_parts(desired.marker(), desired) == ()
    assert changed_parts({}, desired) == ("spec", "action", "policy", "state"), "a schedule without flowctl's marks"
    edited = dataclasses.replace(desired, spec={**desired.spec, "jitter": 60.0},
                                 state={**desired.state, "paused": False})
    assert changed_parts(desired.marker(), edited) == ("spec", "state")

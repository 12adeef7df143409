"""temporal.schedule entries, registry half: the spec grammar, what an entry asks of Temporal (its parts and
their digests), the request apply hands the runner, and when apply and diff call it (no server here: the
callback is a recording stand-in; tests/runner/schedules/ reconcile with a real one)."""

from __future__ import annotations

import dataclasses
import datetime
import re
from pathlib import Path

import pytest

from registry.errors import ExitCode, FlowError
from registry.loader import load_project
from registry.open_store import open_store
from registry.publish import apply_tree, diff_registry, publish_tree
from registry.render import applied, diffed
from registry.revision import Revision, build_revisions
from registry.schedule_spec import SpecError, check_cron, normalized_spec, parse_calendar_value
from registry.schedules import (
    DesiredSchedule,
    ScheduleAction,
    ScheduleChange,
    ScheduleReport,
    ScheduleRequest,
    desired_schedule,
    schedule_request,
)
from registry.store import RegistryConflict

PROJECT = """\
version: "1.0"
namespace: app
entries:
  - {name: client, kind: temporal.client}
  - {name: worker, kind: temporal.worker, client: client, task_queue: reports}
  - name: report
    kind: workflow.lua
    source: file://report.lua
    options:
      temporal.workflow.execution_timeout: 1h
      temporal.workflow.memo: {team: ops}
      temporal.workflow.id_conflict_policy: fail
    meta: {temporal: {workflow: {worker: worker}}}
"""
TICK = """\
  - name: tick
    kind: temporal.schedule
    workflow: report
    input: {day: 2025-01-31}
    interval: {every: 2s}
    options: {temporal.workflow.run_timeout: 5m}
    memo: {kind: tick}
"""


def write(root: Path, schedules: str = TICK, lua: str = "return {main = function(x) return x end}\n") -> Path:
    entries = root / "entries"
    entries.mkdir(parents=True, exist_ok=True)
    (entries / "app.yaml").write_text(PROJECT + schedules, encoding="utf-8")
    (entries / "report.lua").write_text(lua, encoding="utf-8")
    return entries


def revisions(root: Path, schedules: str = TICK, **kw: str) -> dict[str, Revision]:
    project = load_project([write(root, schedules, **kw)])
    assert project.diagnostics == []
    return build_revisions(project)


# ---------------------------------------------------------------------- the spec grammar


@pytest.mark.parametrize(("value", "field", "ranges"), [
    ("*/15", "minute", [(0, 59, 15)]),
    ("3/5", "hour", [(3, 23, 5)]),
    ("1-5/2,8", "day_of_month", [(1, 5, 2), (8, 8, 1)]),
    ("jan,July", "month", [(1, 1, 1), (7, 7, 1)]),
    ("MON-FRI", "day_of_week", [(1, 5, 1)]),
    ("fri-7", "day_of_week", [(0, 0, 1), (5, 6, 1)]),  # 7 is Sunday again: folded onto 0
    ("*", "day_of_week", [(0, 6, 1)]),
    (9, "hour", [(9, 9, 1)]),
    ("*", "year", []),  # any year
    ("", "second", [(0, 0, 1)]),  # unset: the field's default
])
def test_calendar_values_follow_temporals_grammar(value: str | int, field: str, ranges: list[tuple[int, ...]]) -> None:
    assert parse_calendar_value(value, field) == ranges


@pytest.mark.parametrize(("value", "field", "message"), [
    ("25", "hour", "'25' is out of range 0-23"),
    ("MON-FOO", "day_of_week", "'FOO' is not a number or a weekday name"),
    ("1-2-3", "minute", "a range is `first-last`"),
    ("*/0", "minute", "a step is `/` and a whole number of at least 1"),
    ("5-3", "hour", "'3' is out of range 5-23"),
    ("1999", "year", "out of range 2000-2100"),
])
def test_calendar_values_temporal_refuses_are_refused(value: str, field: str, message: str) -> None:
    with pytest.raises(SpecError, match=re.escape(message)):
        parse_calendar_value(value, field)


def test_cron_expressions() -> None:
    assert check_cron("0 9 * * MON-FRI") == ""
    assert check_cron("TZ=Europe/Berlin @daily # nightly") == "Europe/Berlin"
    assert check_cron("@every 90m/15m") == ""
    assert check_cron("30 0 9 1 * * 2030") == ""  # seconds first, year last
    for expression, message in [("0 25 * * *", "hour field: '25' is out of range 0-23"),
                                ("* * *", "3 field(s)"), ("@sometimes", "unknown shorthand '@sometimes'"),
                                ("@every 500ms", "shorter than 1s"), ("@every 1h/2h", "not shorter than every"),
                                ("0 0 * * 8", "day-of-week field: '8' is out of range 0-7")]:
        with pytest.raises(SpecError, match=re.escape(message)):
            check_cron(expression)


def test_the_spec_as_plain_data() -> None:
    spec = normalized_spec({"cron": " 0 2 * * * ", "interval": [{"every": "1h", "offset": "5m"}],
                            "calendar": [{"hour": 9, "day_of_week": "mon-fri", "comment": "weekday mornings"}],
                            "start_at": datetime.datetime(2025, 1, 1),  # YAML timestamps without offset are UTC
                            "end_at": "2025-06-01T02:00:00+02:00", "jitter": "30s", "timezone": "Europe/Berlin"})
    assert spec["cron"] == ["0 2 * * *"]
    assert spec["intervals"] == [{"every": 3600.0, "offset": 300.0}]
    assert spec["calendars"] == [{"second": [[0, 0, 1]], "minute": [[0, 0, 1]], "hour": [[9, 9, 1]],
                                  "day_of_month": [[1, 31, 1]], "month": [[1, 12, 1]], "year": [],
                                  "day_of_week": [[1, 5, 1]], "comment": "weekday mornings"}]
    assert (spec["start_at"], spec["end_at"]) == ("2025-01-01T00:00:00+00:00", "2025-06-01T00:00:00+00:00")
    assert (spec["jitter"], spec["timezone"], spec["skip"]) == (30.0, "Europe/Berlin", [])


# ---------------------------------------------------------------------- what an entry asks of Temporal


def test_a_schedule_entry_becomes_its_parts(tmp_path: Path) -> None:
    revs = revisions(tmp_path)
    desired = desired_schedule(revs["app:tick"], revs)
    assert (desired.schedule_id, desired.client_id, desired.revision) == ("app:tick", "app:client",
                                                                          revs["app:tick"].digest)
    assert desired.action == {
        "workflow": "app:report", "workflow_type": "app:report", "task_queue": "reports", "id": "tick",
        "args": [{"day": "2025-01-31"}],  # a YAML date reaches the workflow as ISO text
        # the workflow's start options a schedule takes, then the schedule's own (id_conflict_policy is not one)
        "options": {"execution_timeout": "1h", "run_timeout": "5m"},
        "memo": {"team": "ops", "kind": "tick"}, "search_attributes": {}, "revision": None}
    assert desired.policy == {"overlap": "skip", "catchup_window": None, "pause_on_failure": False}
    assert desired.state == {"paused": False, "note": ""}
    assert desired.spec["intervals"] == [{"every": 2.0, "offset": 0.0}]
    assert desired.marker() == {"schedule": "app:tick", "entry": "app:tick", "revision": desired.revision,
                                "parts": desired.digests()}


def test_pinned_runs_execute_the_workflow_revision_of_the_apply(tmp_path: Path) -> None:
    revs = revisions(tmp_path, TICK + "    revision: pinned\n    schedule_id: nightly\n    client: app:client\n")
    desired = desired_schedule(revs["app:tick"], revs)
    assert desired.action["revision"] == revs["app:report"].digest
    assert desired.schedule_id == "nightly"
    other = revisions(tmp_path / "b", TICK + "    revision: pinned\n", lua="return {main = function() end}\n")
    assert desired_schedule(other["app:tick"], other).action["revision"] == other["app:report"].digest
    assert _changed(desired, desired_schedule(other["app:tick"], other)) == {"action"}


def _changed(before: DesiredSchedule, after: DesiredSchedule) -> set[str]:
    return {part for part, digest in after.digests().items() if before.digests()[part] != digest}


@pytest.mark.parametrize(("edit", "parts"), [
    (("interval: {every: 2s}", "interval: {every: 3s}"), {"spec"}),
    (("input: {day: 2025-01-31}", "input: {day: 2025-02-01}"), {"action"}),
    (("    memo: {kind: tick}\n", "    memo: {kind: tick}\n    overlap: allow_all\n"), {"policy"}),
    (("    memo: {kind: tick}\n", "    memo: {kind: tick}\n    paused: true\n"), {"state"}),
    (("    memo: {kind: tick}\n", "    memo: {kind: tick}\n    description: words only\n"), set()),
])
def test_each_edit_changes_only_its_part(tmp_path: Path, edit: tuple[str, str], parts: set[str]) -> None:
    before = revisions(tmp_path / "a")
    after = revisions(tmp_path / "b", TICK.replace(*edit))
    old, new = desired_schedule(before["app:tick"], before), desired_schedule(after["app:tick"], after)
    assert _changed(old, new) == parts
    # the revision changes with any edit: the cluster records which one it was applied from
    assert (old.revision != new.revision) == (TICK.replace(*edit) != TICK)


def test_an_unpinned_schedule_does_not_change_with_its_workflows_code(tmp_path: Path) -> None:
    before = revisions(tmp_path / "a")
    after = revisions(tmp_path / "b", lua="return {main = function() return 1 end}\n")
    assert before["app:report"].digest != after["app:report"].digest
    assert _changed(desired_schedule(before["app:tick"], before), desired_schedule(after["app:tick"], after)) == set()


# ---------------------------------------------------------------------- the request, and when it is sent


class Recorder:
    """A ScheduleSync that records its requests and answers with ``report`` (or a plan of one creation)."""

    def __init__(self, registry: str | None = None, report: ScheduleReport | None = None) -> None:
        self.calls: list[tuple[ScheduleRequest, bool, dict[str, str]]] = []
        self.registry = registry
        self.report = report

    def __call__(self, request: ScheduleRequest, *, apply: bool) -> ScheduleReport:
        seen: dict[str, str] = {}
        if self.registry is not None:  # what the registry holds while the cluster is asked
            with open_store(self.registry, create=False) as store:
                seen = store.current_digests()
        self.calls.append((request, apply, seen))
        changes = tuple(ScheduleChange(d.schedule_id, d.entry_id, d.client_id, ScheduleAction.CREATE,
                                       status="done" if apply else "planned") for d in request.desired)
        return self.report or ScheduleReport(changes=changes, applied=apply)


def test_no_schedules_no_request(tmp_path: Path) -> None:
    entries = write(tmp_path, schedules="")
    sync = Recorder()
    outcome = publish_tree([entries], str(tmp_path / "r.db"), schedules=sync)
    assert outcome.ok and outcome.schedules is None and sync.calls == []
    with open_store(str(tmp_path / "r.db")) as store:
        plan = diff_registry([entries], str(tmp_path / "r.db")).plan
        assert plan is not None and schedule_request(plan, store) is None


def test_apply_reconciles_after_the_registry_write_and_diff_only_plans(tmp_path: Path) -> None:
    entries, registry = write(tmp_path), str(tmp_path / "r.db")
    sync = Recorder(registry)
    diff = diff_registry([entries], registry, schedules=sync)
    assert sync.calls[-1][1] is False and diff.has_changes and diff.exit_code is ExitCode.PROBLEMS
    assert "+ app:tick (on app:client) create" in "".join(o.text for o in diffed(diff, as_json=False))
    dry = publish_tree([entries], registry, schedules=sync, dry_run=True)
    assert sync.calls[-1][1] is False and dry.ok and dry.event is None
    outcome = publish_tree([entries], registry, schedules=sync)
    request, apply, seen = sync.calls[-1]
    assert apply is True and outcome.ok and outcome.event is not None
    assert seen["app:tick"] == request.desired[0].revision, "the registry was written before the call"
    assert [d.entry_id for d in request.desired] == ["app:tick"] and request.namespaces == {"app"}
    assert "app:client" in request.clients and not request.kept and not request.removed
    text = "".join(o.text for o in applied(outcome, as_json=False))
    assert "schedule app:tick (on app:client) created" in text
    assert outcome.to_dict()["schedules"]["changes"][0]["action"] == "create"


def test_a_failed_registry_write_sends_nothing_to_the_cluster(tmp_path: Path) -> None:
    entries, registry = write(tmp_path), str(tmp_path / "r.db")
    sync = Recorder()

    def meanwhile(step: object) -> None:  # another apply lands between this apply's plan and its write
        if not hasattr(step, "changes"):
            return
        other = write(tmp_path / "other", TICK.replace("every: 2s", "every: 5s"))
        with open_store(registry) as store:
            assert apply_tree([other], store).ok

    with pytest.raises(RegistryConflict):
        publish_tree([entries], registry, schedules=sync, on_progress=meanwhile)
    assert sync.calls == []


def test_kept_and_pruned_schedule_entries(tmp_path: Path) -> None:
    registry = str(tmp_path / "r.db")
    assert publish_tree([write(tmp_path)], registry).ok  # no callback: the registry only
    gone = write(tmp_path / "gone", schedules="")
    sync = Recorder()
    kept = publish_tree([gone], registry, schedules=sync)
    request = sync.calls[-1][0]
    assert kept.ok and not request.desired and not request.removed
    assert [(r.entry_id, r.schedule_id, r.client_id) for r in request.kept] == [("app:tick", "app:tick", "app:client")]
    pruned = publish_tree([gone], registry, schedules=sync, prune=True)
    request = sync.calls[-1][0]
    assert pruned.ok and request.prune and not request.kept
    assert [r.schedule_id for r in request.removed] == ["app:tick"]
    assert publish_tree([gone], registry, schedules=sync, prune=True).schedules is None, "nothing left to do"


def test_a_schedule_whose_workflow_is_not_applied_cannot_be_built(tmp_path: Path) -> None:
    revs = revisions(tmp_path)
    without = {entry_id: rev for entry_id, rev in revs.items() if entry_id != "app:report"}
    with pytest.raises(FlowError, match=re.escape("its workflow app:report is not an applied workflow.lua entry")):
        desired_schedule(revs["app:tick"], without)
    clientless = {entry_id: rev for entry_id, rev in revs.items() if entry_id != "app:client"}
    with pytest.raises(FlowError, match=re.escape("cannot tell which temporal.client the schedule lives on")):
        desired_schedule(revs["app:tick"], clientless)


def test_a_schedule_that_cannot_be_reconciled_fails_the_apply(tmp_path: Path) -> None:
    entries, registry = write(tmp_path), str(tmp_path / "r.db")
    failed = ScheduleChange("app:tick", "app:tick", "app:client", ScheduleAction.UPDATE, parts=("spec",),
                            status="failed", error="UNAVAILABLE: connection reset")
    skipped = dataclasses.replace(failed, schedule_id="app:other", entry_id="app:other", status="skipped", error="")
    created = ScheduleChange("app:first", "app:first", "app:client", ScheduleAction.CREATE, status="done")
    outcome = publish_tree([entries], registry, schedules=Recorder(report=ScheduleReport(
        (created, failed, skipped), applied=True)))
    assert not outcome.ok and outcome.event is not None, "the registry write stands"
    out = applied(outcome, as_json=False)
    text = "".join(o.text for o in out)
    assert "schedule app:first (on app:client) created" in text
    assert "schedule app:tick (on app:client) failed to update (spec): UNAVAILABLE: connection reset" in text
    assert "schedule app:other (on app:client) not updated (spec): an earlier schedule call failed" in text
    assert "error: not every schedule was reconciled (changed: app:first)" in text
    assert any(o.err and "failed to update" in o.text for o in out)


def test_diff_exits_2_when_the_schedules_cannot_be_planned(tmp_path: Path) -> None:
    entries = write(tmp_path)
    unreachable = Recorder(report=ScheduleReport(error="app:client: cannot connect", hint="start Temporal"))
    diff = diff_registry([entries], str(tmp_path / "r.db"), schedules=unreachable)
    assert diff.exit_code is ExitCode.USAGE
    text = "".join(o.text for o in diffed(diff, as_json=False))
    assert "schedules: app:client: cannot connect; no plan for them" in text and "hint: start Temporal" in text

"""Validate => runnable for options (issue 12): what `flowctl validate` accepts, the worker can send.

Hypothesis writes entries whose options sit near and beyond every bound (huge durations and
attempts, NaN and infinities, negatives, zero). Whenever validate accepts the tree, `apply`
must succeed and every activity option, workflow start option (client and child starts) and
schedule built from the applied revisions must convert to Temporal's protobuf values — the
step where an unbounded value used to raise OverflowError/ValueError inside a workflow task.
Values validate refuses must be refused with a located diagnostic of the FC1xx stage.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import math
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import temporalio.api.common.v1
import yaml
from google.protobuf.duration_pb2 import Duration
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from temporalio.common import RetryPolicy, TypedSearchAttributes
from temporalio.converter import encode_typed_search_attribute_value

from registry.durations import MAX_DURATION_MS, parse_duration
from registry.errors import FlowError
from registry.open_store import open_store
from registry.publish import publish_tree
from registry.revision import Revision
from registry.schedules import desired_schedule
from registry.validate import validate_project
from runner.revision_source import ProjectRevisionSource
from runner.schedules.spec import schedule_of
from runner.temporal.options import activity_options, normalize, retry_policy, start_kwargs
from tests.runner.schedules import schedule_project
from tests.runner.schedules.test_reconcile import Reconciler
from tests.support.worker import lua_worker

UNITS = ("ms", "s", "m", "h", "d")
#: in range, with the edges: 0, 1ms, exactly the maximum in each unit, fractions
good_durations = st.one_of(
    st.sampled_from(["0", 0, "1ms", "36500d", "876000h", "52560000m", "36499d23h59m59s999ms", "1.5s",
                     "0.0001ms", str(MAX_DURATION_MS), MAX_DURATION_MS, float(MAX_DURATION_MS), 5.0]),
    st.integers(min_value=0, max_value=MAX_DURATION_MS),
    st.builds(lambda n, u: f"{n}{u}", st.integers(min_value=0, max_value=36500), st.sampled_from(UNITS)),
)
#: beyond it: just over, absurdly over, negative, not finite
bad_durations = st.one_of(
    st.sampled_from(["36500d1ms", "36501d", "99999999999999999999d", "876001h", MAX_DURATION_MS + 1,
                     float(MAX_DURATION_MS + 1), "9" * 400]),
    st.integers(min_value=-5, max_value=10**22),
    st.builds(lambda n, u: f"{n}{u}", st.integers(min_value=0, max_value=10**21), st.sampled_from(UNITS)),
    st.floats(allow_nan=True, allow_infinity=True),
)


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """One value in twenty from ``bad``: many trees then validate, and those that do get built."""
    return st.integers(min_value=0, max_value=19).flatmap(lambda n: bad if n == 0 else good)


durations = mostly(good_durations, bad_durations)
bad_numbers = st.one_of(st.integers(min_value=-(2**65), max_value=2**65),
                        st.floats(allow_nan=True, allow_infinity=True),
                        st.sampled_from([-1, 0, 100.0000001, 2**31, 2**63 - 1, 2**63]))
attempts = mostly(st.one_of(st.integers(min_value=0, max_value=2**31 - 1), st.sampled_from([0, 1, 2**31 - 1])),
                  bad_numbers)
coefficients = mostly(st.one_of(st.floats(min_value=1, max_value=100), st.sampled_from([1, 100, 1.0, 100.0])),
                      bad_numbers)
counts = mostly(st.one_of(st.integers(min_value=1, max_value=2**31 - 1), st.sampled_from([1, 10**7, 2**31 - 1])),
                bad_numbers)
numbers = mostly(st.one_of(st.integers(min_value=-(2**63), max_value=2**63 - 1),
                           st.floats(allow_nan=False, allow_infinity=False)), bad_numbers)
periods = mostly(st.sampled_from(["1s", "1h", "1d", "36500d", MAX_DURATION_MS, 1000]), bad_durations)
retry_policies = st.fixed_dictionaries({}, optional={
    "initial_interval": durations, "maximum_interval": durations, "backoff_coefficient": coefficients,
    "maximum_attempts": attempts, "non_retryable_error_kinds": st.just(["INVALID"]),
})
activity_opts = st.fixed_dictionaries({}, optional={
    "start_to_close_timeout": durations, "schedule_to_close_timeout": durations,
    "schedule_to_start_timeout": durations, "heartbeat_timeout": durations, "retry_policy": retry_policies,
})
search_values = st.one_of(numbers, st.booleans(), st.text(alphabet="abc", max_size=3))
workflow_opts = st.fixed_dictionaries({}, optional={
    "temporal.workflow.execution_timeout": durations, "temporal.workflow.run_timeout": durations,
    "temporal.workflow.task_timeout": durations, "temporal.workflow.start_delay": durations,
    "temporal.workflow.retry_policy": retry_policies,
    "temporal.workflow.search_attributes": st.dictionaries(st.sampled_from(["CustomIntField", "CustomKeywordField"]),
                                                           search_values, max_size=2),
})
schedule_fields = st.fixed_dictionaries({"interval": st.fixed_dictionaries({"every": periods})}, optional={
    "jitter": durations, "catchup_window": durations,
    "options": st.fixed_dictionaries({}, optional={"temporal.workflow.retry_policy": retry_policies,
                                                   "temporal.workflow.run_timeout": durations}),
})
worker_opts = st.fixed_dictionaries({}, optional={
    "max_concurrent_workflow_tasks": counts, "max_concurrent_activities": counts, "max_cached_workflows": counts,
})


def entry_file(activity: dict[str, Any], workflow: dict[str, Any], schedule: dict[str, Any],
               worker: dict[str, Any]) -> str:
    entries: list[dict[str, Any]] = [
        {"name": "client", "kind": "temporal.client"},
        {"name": "worker", "kind": "temporal.worker", "client": "client", "worker_options": worker},
        {"name": "act", "kind": "function.lua", "source": "file://act.lua", "options": activity,
         "meta": {"temporal": {"activity": {"worker": "worker"}}}},
        {"name": "flow", "kind": "workflow.lua", "source": "file://flow.lua", "options": workflow,
         "meta": {"temporal": {"workflow": {"worker": "worker"}}}},
        {"name": "nightly", "kind": "temporal.schedule", "workflow": "flow", **schedule},
    ]
    return yaml.safe_dump({"version": "1.0", "namespace": "app", "entries": entries}, sort_keys=False)


def send(value: Any) -> int:
    """Convert what the worker would send as Temporal does; the number of values converted."""
    if isinstance(value, timedelta):
        Duration().FromTimedelta(value)
        return 1
    if isinstance(value, RetryPolicy):
        value.apply_to_proto(temporalio.api.common.v1.RetryPolicy())
        return 1
    if isinstance(value, TypedSearchAttributes):
        for pair in value:
            encode_typed_search_attribute_value(pair.key, pair.value)
        return len(value)
    if isinstance(value, dict):
        return sum(send(v) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(send(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return sum(send(getattr(value, f.name)) for f in dataclasses.fields(value))
    return 0


def build_everything(registry: Path) -> int:
    with open_store(str(registry)) as store:
        current = {rev.entry_id: rev for rev in store.list_current()}
    built = send(activity_options(current["app:act"]))
    merged = normalize(current["app:flow"].data.get("options"))
    built += send(start_kwargs(merged, child=False))
    try:
        built += send(start_kwargs(merged, child=True))
    except FlowError as refused:  # the one option a child start cannot take: a clear error, not a crash
        assert "start_delay is not available for child workflows" in refused.message
    built += send(schedule_of(desired_schedule(current["app:nightly"], current)))
    return built


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(activity=activity_opts, workflow=workflow_opts, schedule=schedule_fields, worker=worker_opts)
def test_what_validate_accepts_applies_and_builds(activity: dict[str, Any], workflow: dict[str, Any],
                                                  schedule: dict[str, Any], worker: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "entries"
        root.mkdir()
        (root / "app.yaml").write_text(entry_file(activity, workflow, schedule, worker))
        (root / "act.lua").write_text("return { main = function(x) return x end }\n")
        (root / "flow.lua").write_text("return { main = function(x) return x end }\n")
        report = validate_project([root], cache_dir=None)
        event("accepted" if report.ok else "refused: " + " ".join(sorted({d.code for d in report.errors})))
        if not report.ok:
            for problem in report.errors:
                assert problem.code.startswith("FC1") and problem.line >= 1 and problem.hint, problem
            return
        registry = Path(scratch) / "registry.db"
        outcome = publish_tree([root], str(registry), cache_dir=None)
        assert outcome.ok, [d.message for d in outcome.diagnostics]
        assert build_everything(registry) >= 1  # the activity's start_to_close_timeout, at least


@given(value=durations)
def test_parse_duration_either_gives_a_sendable_duration_or_a_flow_error(value: Any) -> None:
    try:
        parsed = parse_duration(value)
    except FlowError as refused:
        assert refused.hint
        return
    assert timedelta(0) <= parsed <= timedelta(milliseconds=MAX_DURATION_MS)
    Duration().FromTimedelta(parsed)


@given(policy=retry_policies)
def test_run_time_retry_policies_either_convert_or_raise_a_flow_error(policy: dict[str, Any]) -> None:
    """Lua's with_options({["activity.retry_policy"] = …}) reaches retry_policy() without validate."""
    try:
        built = retry_policy(policy)
    except FlowError as refused:
        assert refused.hint
        return
    assert math.isfinite(built.backoff_coefficient)
    built.apply_to_proto(temporalio.api.common.v1.RetryPolicy())


WIDEST = """\
version: "1.0"
namespace: app
entries:
  - {name: client, kind: temporal.client}
  - name: worker
    kind: temporal.worker
    client: client
    worker_options: {max_concurrent_workflow_tasks: 2147483647, max_concurrent_activities: 2147483647,
                     max_cached_workflows: 10000000}
    limits: {payload_bytes: 2147483647, commands_per_task: 2147483647}
  - name: act
    kind: function.lua
    source: file://act.lua
    options:
      start_to_close_timeout: 36500d
      schedule_to_close_timeout: 36500d
      schedule_to_start_timeout: 36500d
      heartbeat_timeout: 36500d
      retry_policy: {initial_interval: 36500d, backoff_coefficient: 100, maximum_attempts: 2147483647}
    meta: {temporal: {activity: {worker: worker}}}
  - name: child
    kind: workflow.lua
    source: file://act.lua
    options:
      temporal.workflow.execution_timeout: 36500d
      temporal.workflow.run_timeout: 36500d
      temporal.workflow.task_timeout: 36500d
      temporal.workflow.retry_policy: {initial_interval: 36500d, maximum_interval: 36500d,
                                       backoff_coefficient: 100.0, maximum_attempts: 2147483647}
    meta: {temporal: {workflow: {worker: worker}}}
  - name: caller
    kind: workflow.lua
    source: file://caller.lua
    modules: [funcs, workflow]
    options: {temporal.workflow.execution_timeout: 36500d, temporal.workflow.task_timeout: 36500d,
              temporal.workflow.retry_policy: {maximum_attempts: 2147483647, backoff_coefficient: 100}}
    meta: {temporal: {workflow: {worker: worker}}}
"""
CALLER = """\
local function main(x)
  local a, err = funcs.call("act", x)
  assert(not err, err and err:message())
  local b, cerr = workflow.exec("child", x + 1)
  assert(not cerr, cerr and cerr:message())
  return {a, b}
end
return { main = main }
"""


@pytest.mark.filterwarnings("ignore:Worker max_concurrent_activities")  # more than the thread pool: allowed
async def test_the_widest_options_validate_accepts_run_on_the_dev_server(tmp_path: Path, dev_server: Any) -> None:
    """Every duration at 36500d, attempts at 2^31-1, backoff 100, the worker's maxima: the run completes."""
    (tmp_path / "app.yaml").write_text(WIDEST)
    (tmp_path / "act.lua").write_text('return { main = function(x) return x * 2 end }\n')
    (tmp_path / "caller.lua").write_text(CALLER)
    report = validate_project([tmp_path], strict=True, cache_dir=None)
    assert report.ok and not report.diagnostics, [d.message for d in report.diagnostics]
    client = await dev_server.client()
    async with lua_worker(client, tmp_path) as served:
        assert await asyncio.wait_for(served.run("app:caller", 20), 60) == [40, 42]


def test_the_widest_schedule_validate_accepts_is_created(tmp_path: Path, dev_server: Any) -> None:
    entries, ns = schedule_project(tmp_path, """\
  - name: widest
    kind: temporal.schedule
    workflow: report
    input: {n: 1}
    paused: true
    interval: {every: 36500d, offset: 36499d}
    jitter: 36500d
    catchup_window: 36500d
    options:
      temporal.workflow.run_timeout: 36500d
      temporal.workflow.retry_policy: {initial_interval: 36500d, backoff_coefficient: 100, maximum_attempts: 2147483647}
""")
    report = validate_project([entries], strict=True, cache_dir=None)
    assert report.ok and not report.diagnostics, [d.message for d in report.diagnostics]
    sync = Reconciler(dev_server)
    outcome = publish_tree([entries], str(tmp_path / "registry.db"), schedules=sync)
    assert outcome.ok, (outcome.diagnostics, outcome.schedules)
    described = sync.describe(f"{ns}:widest")
    assert described is not None
    assert described.schedule.spec.jitter == timedelta(days=36500)
    sync.delete(f"{ns}:widest")


@given(overrides=st.fixed_dictionaries({}, optional={
    "activity.start_to_close_timeout": durations, "activity.schedule_to_close_timeout": durations,
    "activity.heartbeat_timeout": durations, "activity.retry_policy": retry_policies}))
def test_run_time_activity_overrides_either_convert_or_raise_a_flow_error(overrides: dict[str, Any]) -> None:
    """funcs.new():with_options({...}) reaches activity_options() without validate: a FlowError (a Lua
    error at the caller's line) or options Temporal takes, never OverflowError/ValueError in the task."""
    revision = _activity_revision()
    try:
        built = activity_options(revision, overrides)
    except FlowError as refused:
        assert refused.hint
        return
    assert send(built) >= 1


@functools.cache
def _activity_revision() -> Revision:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "app.yaml").write_text(entry_file({"retry_policy": {"initial_interval": "36500d"}}, {},
                                                  {"interval": {"every": "1h"}}, {}))
        (root / "act.lua").write_text("return { main = function(x) return x end }\n")
        (root / "flow.lua").write_text("return { main = function(x) return x end }\n")
        return ProjectRevisionSource.from_paths([root]).activity("app:act")

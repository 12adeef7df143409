"""``run --wait``'s StuckWatch: when to warn about a stuck run, when to warn again, when to give up; and the
text the warning and ``flowctl list`` print."""

from __future__ import annotations

from runner.client.executions import REPEAT_WARNING_EVERY, StuckWatch, TaskFailure
from runner.client.listing import ListedRun, RunFilter, RunList
from runner.render import run_list, stuck_warning


def failed(times: int, *, nondeterminism: bool = False) -> TaskFailure:
    return TaskFailure(attempt=times + 1, failures=times, message="bug: no order nil", where="buggy.lua:4",
                       cause="workflow_worker_unhandled_failure", nondeterminism=nondeterminism)


def test_warns_once_when_stuck_then_again_only_when_more_attempts_failed_a_minute_later() -> None:
    watch = StuckWatch(stuck_after=1)
    assert watch.observe(None, 0.0) == (False, False), "not stuck: nothing to say"
    assert watch.observe(failed(1), 1.0) == (True, False)
    assert watch.observe(failed(1), 2.0) == (False, False), "the same failure is not repeated"
    assert watch.observe(failed(2), 30.0) == (False, False), "more failures, but within the minute"
    assert watch.observe(failed(3), 1.0 + REPEAT_WARNING_EVERY) == (True, False)
    assert watch.observe(failed(3), 200.0) == (False, False), "no new failure, no new warning"


def test_stuck_after_counts_failed_attempts() -> None:
    watch = StuckWatch(stuck_after=3)
    assert watch.observe(failed(2), 0.0) == (False, False)
    assert watch.observe(failed(3), 20.0) == (True, False)


def test_gives_up_after_the_stuck_timeout_counted_from_when_it_became_stuck() -> None:
    watch = StuckWatch(stuck_after=1, stuck_timeout=5.0)
    assert watch.observe(None, 0.0) == (False, False)
    assert watch.observe(failed(1), 10.0) == (True, False)
    assert watch.observe(failed(1), 14.0) == (False, False)
    assert watch.observe(failed(1), 15.0) == (False, True)
    assert StuckWatch(stuck_after=1, stuck_timeout=0.0).observe(failed(1), 0.0) == (True, True)


def test_a_run_that_progresses_again_starts_a_new_streak() -> None:
    watch = StuckWatch(stuck_after=1, stuck_timeout=5.0)
    assert watch.observe(failed(1), 0.0) == (True, False)
    assert watch.observe(None, 4.0) == (False, False), "the task completed: no longer stuck"
    assert watch.observe(failed(1), 8.0) == (True, False), "stuck again: a new warning, a new timeout"
    assert watch.observe(failed(1), 12.0) == (False, False)
    assert watch.observe(failed(1), 13.0) == (False, True)


def test_the_warning_names_the_failure_count_the_message_and_the_lua_line() -> None:
    [warning] = stuck_warning("wf-1", failed(1))
    assert warning.err and warning.text == ("warning: wf-1 is stuck: workflow task failed 1 time (attempt 2): "
                                            "bug: no order nil at buggy.lua:4\n")
    [nondeterministic] = stuck_warning("wf-2", failed(3, nondeterminism=True))
    assert "failed 3 times (attempt 4): nondeterminism: bug" in nondeterministic.text


def test_list_prints_one_row_per_run_and_why_stuck_ones_are() -> None:
    runs = [ListedRun("wf-stuck", "r-1", "stuck:buggy", "stuck:buggy", "a" * 64, "stuck", "2025-01-02T00:00:00",
                      task_failure=failed(1)),
            ListedRun("wf-moved", "r-2", "T", None, "b" * 64, "running", "2025-01-01T00:00:00", upgraded=True)]
    [printed] = run_list(RunList("WorkflowType = 'x'", runs, truncated=True), as_json=False)
    assert printed.text.splitlines() == [
        "WORKFLOW ID  RUN ID  ENTRY        REVISION       STATUS   STARTED",
        "wf-stuck     r-1     stuck:buggy  aaaaaaaaaaaa   stuck    2025-01-02T00:00:00",
        "wf-moved     r-2     T            bbbbbbbbbbbb*  running  2025-01-01T00:00:00",
        "wf-stuck is stuck: workflow task failed 1 time (attempt 2): bug: no order nil at buggy.lua:4",
        "* moved there by `flowctl upgrade`",
        "(stopped after --limit runs: raise it, or narrow with --entry, --status or --query)"]
    [empty] = run_list(RunList("ExecutionStatus = 'Running'"), as_json=False)
    assert empty.text == "no runs match \"ExecutionStatus = 'Running'\"\n"


def test_the_visibility_query_ands_entry_status_and_query() -> None:
    wanted = RunFilter(workflow_type="app:it's", status="timed_out", query="StartTime > '2025-01-01T00:00:00Z'")
    assert wanted.visibility_query() == ("WorkflowType = 'app:it\\'s' AND ExecutionStatus = 'TimedOut' AND "
                                         "(StartTime > '2025-01-01T00:00:00Z')")
    assert RunFilter(status="stuck").visibility_query() == "ExecutionStatus = 'Running'"
    assert RunFilter().visibility_query() == ""

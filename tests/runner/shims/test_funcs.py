"""The ``funcs`` module up to the point an activity would start: what it refuses, and how.

Running activities needs Temporal (tests/runner/temporal/); without a server the run's
entries still resolve, so unknown entries, bad options and arguments that cannot cross are
all answered here, as workflow code sees them.
"""

from __future__ import annotations

from typing import Any

import pytest

from runner.revision_source import ProjectRevisionSource
from runner.shims.run_context import WorkflowRun
from tests.support.paths import ENTRIES
from tests.support.sandboxes import lua_error, run_main, shim_run


def basic_run() -> WorkflowRun:
    """A run of app:order_workflow with the entries of tests/runner/entries/basic."""
    source = ProjectRevisionSource.from_paths([ENTRIES / "basic"])
    return shim_run(["funcs", "time"], source=source, entry_id="app:order_workflow")


async def lua(body: str) -> Any:
    run = basic_run()
    (value,) = await run_main(run, body)
    return run.sandbox.export(value)


@pytest.mark.parametrize("target", ["app:nope", "app:order_workflow", "other:charge_payment"])
async def test_calling_what_is_not_an_activity_returns_a_not_found_error(target: str) -> None:
    kind, message, retryable = await lua(f"""
local result, err = funcs.call("{target}", 1)
assert(result == nil)
return {{err:kind(), err:message(), err:retryable()}}
""")
    assert kind == "NOT_FOUND"
    assert target in message
    assert retryable is False


async def test_a_future_of_an_unknown_activity_resolves_to_the_same_error() -> None:
    assert await lua("""
local future = funcs.async("app:nope")
local result, err = future:result()
local again, err_again = future:result()
return {result == nil, err:kind(), future:is_done(), again == nil, err_again:kind()}
""") == [True, "NOT_FOUND", True, True, "NOT_FOUND"]


@pytest.mark.parametrize(("statement", "message"), [
    ("funcs.call(42)", 'wf.lua:3: funcs.call: the first argument must be an activity entry ID like '
                       '"app:charge_payment", got number'),
    ("funcs.async(nil)", 'wf.lua:3: funcs.async: the first argument must be an activity entry ID like '
                         '"app:charge_payment", got nil'),
    ("funcs.new():with_options('fast')", "wf.lua:3: with_options: expected a table of activity.* options, "
                                         "got string"),
    ("funcs.new():with_options({['activity.bogus'] = 1}):call('app:charge_payment')",
     "wf.lua:3: funcs.call('app:charge_payment'): unknown activity option 'activity.bogus' (use one of: "
     "activity.heartbeat_timeout, activity.retry_policy, activity.schedule_to_close_timeout, "
     "activity.schedule_to_start_timeout, activity.start_to_close_timeout, activity.task_queue)"),
])
async def test_misuse_fails_at_the_callers_line(statement: str, message: str) -> None:
    assert await lua_error(basic_run(), statement) == message


async def test_an_argument_that_cannot_cross_is_named_by_its_position() -> None:
    message = await lua_error(basic_run(), "funcs.call('app:charge_payment', {amount = 1}, {f = print})")
    assert message.startswith("wf.lua:3: funcs.call('app:charge_payment') argument 2.f: ")


async def test_duration_options_are_checked_like_the_entrys() -> None:
    message = await lua_error(basic_run(), "funcs.new():with_options({['activity.start_to_close_timeout'] = "
                                           "'soon'}):call('app:charge_payment')")
    assert message.startswith("wf.lua:3: funcs.call('app:charge_payment'): ")
    assert "'soon' is not a duration" in message

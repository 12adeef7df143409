"""``print`` and the ``log`` module, their Lua half: what a log command carries.

The Python half writes to ``temporalio.workflow.logger``, which exists only inside a
workflow; here a recording handler stands in for it and the Lua side is real.
"""

from __future__ import annotations

from typing import Any

import pytest

from runner.sandbox.driver import Reply
from runner.sandbox.values import lua_value
from runner.shims.run_context import WorkflowRun
from tests.support.sandboxes import lua_error, run_main, shim_run


def recording(run: WorkflowRun) -> list[dict[str, Any]]:
    """Replace the run's log handler with one that keeps every line as plain data."""
    lines: list[dict[str, Any]] = []

    def log(cmd: Any) -> Reply:
        lines.append({"level": cmd["level"], "message": cmd["message"], "where": cmd["where"],
                      "fields": lua_value(run.sandbox, cmd["fields"], "log fields")})
        return ()

    run.driver.handlers["log"] = log
    return lines


async def test_each_level_sends_its_message_fields_and_the_users_line() -> None:
    run = shim_run([])
    lines = recording(run)
    await run_main(run, "log.debug('d')\nlog.info('order placed', {id = 7, items = {'a'}})\n"
                        "log.warn(42)\nlog.error('failed', {})")
    assert lines == [
        {"level": "debug", "message": "d", "where": "wf.lua:2", "fields": None},
        {"level": "info", "message": "order placed", "where": "wf.lua:3", "fields": {"id": 7, "items": ["a"]}},
        {"level": "warn", "message": "42", "where": "wf.lua:4", "fields": None},
        {"level": "error", "message": "failed", "where": "wf.lua:5", "fields": []},
    ]


async def test_print_joins_its_arguments_with_tabs_like_lua() -> None:
    run = shim_run(["time"])
    lines = recording(run)
    await run_main(run, "print('a', 1, nil, {}, time.SECOND * 2, 2.5, true)\nprint()")
    assert lines == [{"level": "info", "message": "a\t1\tnil\ttable\t2s\t2.5\ttrue", "where": "wf.lua:2",
                      "fields": None},
                     {"level": "info", "message": "", "where": "wf.lua:3", "fields": None}]


async def test_log_is_there_without_being_listed_and_through_require() -> None:
    run = shim_run([])
    lines = recording(run)
    await run_main(run, "require('log').info('via require')")
    assert [line["message"] for line in lines] == ["via require"]


@pytest.mark.parametrize("level", ["debug", "info", "warn", "error"])
async def test_fields_must_be_a_table(level: str) -> None:
    message = await lua_error(shim_run([]), f"log.{level}('x', 'not a table')")
    assert message == f"wf.lua:3: log.{level}: fields must be a table"


async def test_fields_that_cannot_cross_fail_at_the_callers_line() -> None:
    message = await lua_error(shim_run([]), "log.info('x', {f = function() end})")
    assert message.startswith("wf.lua:3: log fields.f: ")

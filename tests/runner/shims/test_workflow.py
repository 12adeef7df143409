"""The ``workflow`` module's Lua half and the handlers that need no Temporal workflow.

Versioning markers, info, search attributes and continue-as-new talk to temporalio and run
on a server (tests/runner/temporal/); what they refuse first, and query/update registration,
are checked here.
"""

from __future__ import annotations

import pytest

from tests.support.sandboxes import lua_error, run_main, shim_run


@pytest.mark.parametrize(("statement", "message"), [
    ("workflow.version('', 1, 2)", "wf.lua:3: workflow.version: change_id must be a non-empty string"),
    ("workflow.version('fix', 1.5, 2)", "wf.lua:3: workflow.version: min_supported and max_supported must be "
                                        "integers"),
    ("workflow.version('fix', 3, 1)", "wf.lua:3: workflow.version: min_supported (3) is greater than "
                                      "max_supported (1)"),
    ("workflow.attrs('x')", "wf.lua:3: workflow.attrs: expected a table {search = {...}, memo = {...}}"),
    ("workflow.attrs({tags = {}})", "wf.lua:3: workflow.attrs: unknown key 'tags' (use search and memo)"),
    ("workflow.attrs({memo = 'x'})", "wf.lua:3: workflow.attrs: memo must be a table of name = value"),
    ("workflow.attrs({search = 'x'})", "wf.lua:3: workflow.attrs: search must be a table of name = value"),
    ("workflow.exec(42)", 'wf.lua:3: workflow.exec: the first argument must be a workflow entry ID like '
                          '"app:child"'),
    ("workflow.on_query('q')", "wf.lua:3: workflow.on_query: expected a name and a function"),
    ("workflow.on_update('u', print, 'no')", "wf.lua:3: workflow.on_update: expected a name, a function and an "
                                            "optional validator function"),
])
async def test_misuse_fails_at_the_callers_line(statement: str, message: str) -> None:
    assert await lua_error(shim_run(["workflow"]), statement) == message


async def test_a_registered_query_answers_from_the_runs_state_without_waiting() -> None:
    run = shim_run(["workflow"])
    await run_main(run, """
local count = 0
workflow.on_query("count", function(step) return count + (step or 0) end)
count = 41
""")
    assert set(run.queries) == {"count"}
    assert run.driver.call_now(run.queries["count"], 1) == (42,)


async def test_a_registered_update_keeps_its_handler_and_validator() -> None:
    run = shim_run(["workflow"])
    await run_main(run, """
workflow.on_update("rename", function(name) return "renamed to " .. name end,
                   function(name) return #name > 0, "a name must not be empty" end)
workflow.on_update("reset", function() return "reset" end)
""")
    handler, validator = run.updates["rename"]
    assert run.driver.call_now(validator, "") == (False, "a name must not be empty")
    assert run.driver.call_now(handler, "x") == ("renamed to x",)
    assert run.updates["reset"][1] is None

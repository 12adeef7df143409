"""``flowctl test`` and pending activities (async completion, issue 18): ``test.run``'s ``pending``
handlers, ``test.pending()`` in mocks, ``test.complete_activity`` / ``fail_activity`` /
``heartbeat_activity``, on the session's time-skipping server with the example project's
app:order_payment (entries/order_payment.lua; its own tests are entries/order_payment_test.lua).
"""

from __future__ import annotations

from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from runner.testing import run_tests
from tests.runner.testing.test_lua_test_runner import by_name, project


async def test_pending_handlers_complete_fail_and_report_their_failures(
        time_skipping_env: WorkflowEnvironment, tmp_path: Path) -> None:
    tree = project(tmp_path, "pending_test")
    report = await run_tests([tree], test_timeout=8.0, env=time_skipping_env)
    outcomes = by_name(report)

    def outcome(name: str) -> tuple[str, str]:
        status, message, where, _detail = outcomes[name]
        return status, f"{message} @ {where}"

    assert outcome("test_a_mock_left_pending_is_completed_by_workflow_and_activity_id")[0] == "passed", outcomes
    assert outcome("test_a_retryable_failure_from_outside_is_retried")[0] == "passed", outcomes
    status, message = outcome("test_an_assertion_in_a_pending_handler_fails_the_test")
    assert status == "failed" and "the pending handler of app:await_payment_confirmation" in message, message
    assert "values differ" in message and "pending_test.lua:39" in message, message
    status, message = outcome("test_test_run_inside_a_pending_handler")
    assert status == "failed" and "test.run cannot be used inside the pending handler" in message, message
    status, message = outcome("test_pending_for_an_unknown_activity")
    assert status == "failed" and "pending names app:no_such_activity, which is not an activity entry" in message
    status, message = outcome("test_a_malformed_token")
    assert status == "failed" and "test.complete_activity(): the task token is not base64 text" in message, message
    status, message = outcome("test_a_bad_failure")
    assert status == "failed" and "test.fail_activity: expected errors.new" in message, message
    assert outcome("test_completing_from_a_mock")[0] == "passed", outcomes   # its check is in Lua
    status, message = outcome("test_left_pending_without_a_handler")  # the server does not skip time then
    assert status == "failed" and "did not finish within 8s of real time (an activity left pending " \
        "(app:await_payment_confirmation) that no `pending` handler completes?" in message, message
    assert report.counts() == {"passed": 3, "failed": 6, "deselected": 0}, outcomes


CONTRACT_TEST = """local test = require("test")
local function test_a_result_its_output_schema_refuses()
    local refused = {}
    local result = test.run("app:order_payment", {id = "o-41", total = 7}, {
        pending = {["app:await_payment_confirmation"] = function(pending)
            local by_ids = {workflow_id = pending.workflow_id, activity_id = pending.activity_id}
            for _, ref in ipairs({pending.token, by_ids}) do
                local ok, err = pcall(test.complete_activity, ref, {reference = 41})
                refused[#refused + 1] = not ok and tostring(err) or "completed"
            end
            test.complete_activity(pending, {reference = "psp-41"})   -- still open: nothing was sent
        end},
    })
    test.eq(result.payment_reference, "psp-41")
    error(table.concat(refused, " | "))   -- reported to the Python test
end
return {test_a_result_its_output_schema_refuses = test_a_result_its_output_schema_refuses}
"""


async def test_complete_activity_checks_the_output_schema_as_flowctl_activity_does(
        time_skipping_env: WorkflowEnvironment, tmp_path: Path) -> None:
    tree = project(tmp_path)
    app = tree / "app.yaml"
    source = "    source: file://activities/await_payment_confirmation.lua\n"
    app.write_text(app.read_text(encoding="utf-8").replace(
        source, source + "    output_schema: {properties: {reference: {type: string}}}\n"), encoding="utf-8")
    (tree / "contract_test.lua").write_text(CONTRACT_TEST, encoding="utf-8")
    report = await run_tests([tree], test_timeout=8.0, env=time_skipping_env)
    status, message, _where, _detail = by_name(report)["test_a_result_its_output_schema_refuses"]
    refusals = message.split(" | ")
    assert status == "failed" and len(refusals) == 2, message  # the test reports both refusals (by token, by ids)
    for refusal in refusals:
        assert "test.complete_activity(): app:await_payment_confirmation: the result does not match its " \
               "output_schema at $.reference: 41 is not of type string" in refusal, message

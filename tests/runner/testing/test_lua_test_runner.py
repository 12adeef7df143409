"""``flowctl test`` itself: the example tests pass fast, failing Lua tests are reported as failures.

The failing fixtures live in tests/runner/testing/fixtures as ``*.lua.txt`` (so the pytest plugin
does not collect them from the repository) and are copied into a temporary copy of the
example project as ``*_test.lua``. Tests that call the runner directly use the session's
time-skipping server; the CLI and pytest-plugin tests start their own, as users' runs do.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from xml.etree import ElementTree

import pytest
from click.testing import CliRunner
from temporalio.testing import WorkflowEnvironment

import cli
from runner.testing import run_tests
from runner.testing.report import TestReport
from tests.support.paths import REPO

FIXTURES = Path(__file__).resolve().parent / "fixtures"

SLOW_ENTRIES = """
  - name: slow
    kind: function.lua
    source: file://activities/slow.lua
    modules: [time]
    meta:
      temporal:
        activity:
          worker: app:worker

  - name: slow_workflow
    kind: workflow.lua
    source: file://slow_workflow.lua
    modules: [funcs]
    meta:
      temporal:
        workflow:
          worker: app:worker
"""


def project(tmp_path: Path, *fixtures: str) -> Path:
    """A copy of the example entries (without their tests) plus a slow activity and the given test files."""
    tree = tmp_path / "entries"
    shutil.copytree(REPO / "entries", tree, ignore=shutil.ignore_patterns("*_test.lua", "golden"))
    with (tree / "app.yaml").open("a", encoding="utf-8") as handle:
        handle.write(SLOW_ENTRIES)
    (tree / "activities" / "slow.lua").write_text(
        'local time = require("time")\nreturn {main = function() time.sleep("4s") return {done = true} end}\n',
        encoding="utf-8")
    (tree / "slow_workflow.lua").write_text(
        'return {main = function() return funcs.call("app:slow") end}\n', encoding="utf-8")
    for name in fixtures:
        shutil.copy(FIXTURES / f"{name}.lua.txt", tree / f"{name}.lua")
    return tree


def by_name(report: TestReport) -> dict[str, tuple[str, str, str | None, str]]:
    return {o.test.name if o.test.name != "<load>" else o.test.file.name: (o.status, o.message, o.where, o.detail)
            for o in report.outcomes}


@pytest.mark.temporal  # starts its own server
def test_the_example_tests_pass_and_a_day_of_timers_takes_well_under_a_second() -> None:
    result = CliRunner().invoke(cli.main, ["test", str(REPO / "entries"), "--format", "json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["ok"] and body["counts"]["failed"] == 0 and body["counts"]["passed"] >= 11
    durations = {t["name"]: t["duration"] for t in body["tests"]}
    assert durations["test_ships_after_a_day"] < 1.0, durations   # a 24 h timer, skipped
    assert durations["test_an_approval_after_two_days_charges_the_order"] < 1.0, durations


async def test_failing_lua_tests_are_reported_as_failures_and_the_run_goes_on(
        time_skipping_env: WorkflowEnvironment, tmp_path: Path) -> None:
    tree = project(tmp_path, "failing_test", "syntax_error_test", "load_error_test")
    started = time.perf_counter()
    report = await run_tests([tree], test_timeout=2.0, env=time_skipping_env)
    elapsed = time.perf_counter() - started
    outcomes = by_name(report)
    assert outcomes.pop("test_passes_between_failures")[0] == "passed"
    assert {status for status, *_ in outcomes.values()} == {"failed"}, outcomes
    assert not report.ok and report.counts() == {"passed": 1, "failed": 14, "deselected": 0}

    def failed(name: str) -> tuple[str, str | None, str]:
        _status, message, where, detail = outcomes[name]
        return message, where, detail

    message, where, detail = failed("test_eq_shows_a_diff")
    assert (where or "").endswith("failing_test.lua:11"), where
    assert "values differ" in message and "-    4," in detail and "+    3," in detail
    assert "expected an error of kind NOT_FOUND, got INVALID: bad input" in failed("test_err_kind_mismatch")[0]
    assert "expected the function to raise an error" in failed("test_fails_on_a_function_that_returns")[0]
    message, where, detail = failed("test_runtime_error")
    assert "attempt to index a nil value (local 'order')" in message and (where or "").endswith(":24")
    assert "stack traceback" in detail
    assert "mocks names app:no_such_activity, which is not an activity entry" in \
        failed("test_mock_for_an_unknown_activity")[0]
    assert "no workflow.lua entry app:no_such_workflow" in failed("test_unknown_workflow")[0]
    assert "unknown option 'mockz'" in failed("test_unknown_run_option")[0]
    assert "did not finish within 30d of virtual time" in failed("test_never_finishes_in_virtual_time")[0]
    message, where, _ = failed("test_endless_loop")
    assert "instructions limit exceeded" in message and (where or "").endswith(":45"), (message, where)
    message, where, detail = failed("test_assertion_inside_a_mock")
    assert "values differ" in message and (where or "").endswith(":51") and "-6" in detail and "+5" in detail
    assert "golden file" in failed("test_golden_file_missing")[0] and "--update-golden" in \
        failed("test_golden_file_missing")[0]
    assert "did not finish within 2s of real time" in failed("test_slow_real_activity")[0]
    message, where, _ = failed("syntax_error_test.lua")
    assert "unexpected symbol near ')'" in message and (where or "").endswith("syntax_error_test.lua:4")
    assert "this file fails while it loads" in failed("load_error_test.lua")[0]
    assert elapsed < 20, elapsed


async def test_a_golden_mismatch_fails_with_a_diff_until_updated(time_skipping_env: WorkflowEnvironment,
                                                                 tmp_path: Path) -> None:
    tree = project(tmp_path, "golden_test")
    golden = tree / "golden" / "order.txt"
    first = await run_tests([tree], env=time_skipping_env)
    assert by_name(first)["test_order_commands"][0] == "failed" and not golden.exists()

    created = await run_tests([tree], update_golden=True, env=time_skipping_env)
    assert created.ok and golden.exists()
    assert [line for line in golden.read_text().splitlines() if not line.startswith("#")] == [
        "activity app:charge_payment", "timer 1h30m", "activity app:ship_order", "complete"]
    assert (await run_tests([tree], env=time_skipping_env)).ok

    golden.write_text(golden.read_text().replace("timer 1h30m", "timer 2h"), encoding="utf-8")
    mismatch = await run_tests([tree], env=time_skipping_env)
    status, message, where, detail = by_name(mismatch)["test_order_commands"]
    assert status == "failed" and "differ from golden file" in message and (where or "").endswith(":8")
    assert "-timer 2h" in detail and "+timer 1h30m" in detail

    assert (await run_tests([tree], update_golden=True, env=time_skipping_env)).ok
    assert "timer 1h30m" in golden.read_text()


@pytest.mark.temporal  # starts its own server
def test_cli_text_junit_and_selection(tmp_path: Path) -> None:
    tree = project(tmp_path, "failing_test")
    runner = CliRunner()
    text = runner.invoke(cli.main, ["test", str(tree), "-k", "test_eq_shows_a_diff"])
    assert text.exit_code == 1, text.output
    assert "failing_test.lua F" in text.output
    assert "failing_test.lua:11: values differ (- expected, + actual)" in text.output
    assert "1 failed, 0 passed, 12 deselected" in text.output
    junit = runner.invoke(cli.main, ["test", str(tree), "-k", "*passes*", "--format", "junit"])
    assert junit.exit_code == 0, junit.output
    suite = ElementTree.fromstring(junit.stdout).find("testsuite")
    assert suite is not None and suite.get("tests") == "1" and suite.get("failures") == "0"
    none = runner.invoke(cli.main, ["test", str(tree), "-k", "nothing-matches-this"])
    assert none.exit_code == 2 and "no tests ran" in none.output
    missing = runner.invoke(cli.main, ["test", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "no such file or directory" in missing.output


@pytest.mark.temporal  # starts its own server
def test_pytest_collects_lua_test_files(tmp_path: Path) -> None:
    tree = project(tmp_path, "golden_test", "syntax_error_test")
    shutil.copy(REPO / "entries" / "order_saga_test.lua", tree / "order_saga_test.lua")
    shutil.copytree(REPO / "entries" / "golden", tree / "golden")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tree),
                          str(tree)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "2 failed, 4 passed" in run.stdout, run.stdout
    assert "syntax_error_test.lua::<load>" in run.stdout
    assert "golden file" in run.stdout and "order_test" not in run.stdout

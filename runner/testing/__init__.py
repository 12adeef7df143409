"""Lua workflow tests (``flowctl test``, and the same files under pytest).

``*_test.lua`` files beside the entries define ``test_*`` functions that ``require("test")``
to run workflows on Temporal's time-skipping test server with mocked activities, send
signals at virtual times, read the history, compare it to golden files, and assert.
See docs/testing.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from registry.errors import FlowError
from runner.testing.discovery import TestFile, TestId, discover, matches
from runner.testing.report import TestReport, render_progress
from runner.testing.session import DEFAULT_TEST_TIMEOUT, LuaTestSession, Outcome, start_session

__all__ = ["DEFAULT_TEST_TIMEOUT", "LuaTestSession", "Outcome", "TestFile", "TestId", "TestReport", "discover",
           "quiet_sdk_logs", "require_tests", "run_tests", "start_session"]


def quiet_sdk_logs() -> None:
    """Workflow task failures are reported on the test; the SDK's warnings about them are noise."""
    for name in ("temporalio", "temporalio.worker", "temporalio.activity", "temporalio.workflow"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


async def run_tests(paths: Sequence[Path | str], *, pattern: str | None = None, update_golden: bool = False,
                    test_timeout: float = DEFAULT_TEST_TIMEOUT, entries: Path | None = None,
                    echo: Callable[[str], None] | None = None,
                    env: WorkflowEnvironment | None = None) -> TestReport:
    """Discover, start the time-skipping server once, run every selected test; never stops at a failure.

    ``env``: an already running time-skipping environment to use (pytest's session fixture).
    """
    started = time.perf_counter()
    files = discover(paths, entries=entries)
    report = TestReport()
    progress: dict[str, str] = {}
    async with start_session(update_golden=update_golden, test_timeout=test_timeout, env=env) as session:
        for test_file in files:
            session.collect(test_file)
            if test_file.error is not None:
                first, _, rest = test_file.error.partition("\n")
                outcome = Outcome(test=TestId(test_file.path, "<load>"), status="failed", duration=0.0,
                                  where=test_file.error_where, message=first, detail=rest)
                report.outcomes.append(outcome)
                if echo:
                    render_progress(outcome, echo, progress)
                continue
            for name in test_file.tests:
                if not matches(TestId(test_file.path, name), pattern):
                    report.deselected += 1
                    continue
                outcome = await session.run(test_file, name)
                report.outcomes.append(outcome)
                if echo:
                    render_progress(outcome, echo, progress)
    if echo and progress:
        echo("\n")
    report.duration = time.perf_counter() - started
    return report


def require_tests(report: TestReport, paths: Sequence[str], pattern: str | None) -> None:
    """Raise a FlowError when no test ran: a run that tested nothing is a mistake, not a pass.

    ``paths`` and ``pattern`` are the ones the run was given, quoted in the error.
    """
    if not report.outcomes:
        matching = f", matching -k {pattern!r})" if pattern else ")"
        raise FlowError(f"no tests ran (under {', '.join(paths) or 'entries'}{matching}",
                        hint="name test files *_test.lua and their functions test_*")

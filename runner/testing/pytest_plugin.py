"""pytest collects ``*_test.lua`` files too: one item per ``test_*`` function (``pytest entries``).

Declared under ``[project.entry-points.pytest11]``, so installing flowctl is enough. The
time-skipping server starts once per pytest session, at the first Lua test, on an event
loop of its own in a background thread (every Lua runtime of the session lives on that
thread: lupa is not thread-safe, and the tests' own asyncio loop stays untouched).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from registry.errors import FlowError

T = TypeVar("T")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("flowctl", "flowctl Lua workflow tests")
    group.addoption("--flowctl-update-golden", action="store_true", default=False,
                    help="Rewrite the golden files test.golden(name) compares against.")
    group.addoption("--flowctl-timeout", type=float, default=None,
                    help="Real seconds one Lua test function may take (default 60).")


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    from runner.testing.discovery import TEST_SUFFIX

    if file_path.name.endswith(TEST_SUFFIX):
        return LuaTestFile.from_parent(parent, path=file_path)
    return None


class _SessionThread:
    """An event loop in a thread holding the time-skipping server and the Lua test session."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="flowctl-lua-tests", daemon=True)
        self.thread.start()
        self._stack = contextlib.AsyncExitStack()
        self.session: Any = None

    def call(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result()

    def start(self) -> Any:
        if self.session is None:
            # no quiet_sdk_logs() here: pytest captures the SDK's logs (shown for failed tests only), and a
            # plugin retuning the process's loggers would change what every other test in the session sees
            from runner.testing import DEFAULT_TEST_TIMEOUT, start_session

            timeout = self.config.getoption("--flowctl-timeout") or DEFAULT_TEST_TIMEOUT
            update = bool(self.config.getoption("--flowctl-update-golden"))

            async def enter() -> Any:
                return await self._stack.enter_async_context(start_session(update_golden=update,
                                                                           test_timeout=timeout))

            self.session = self.call(enter())
        return self.session

    def close(self) -> None:
        with contextlib.suppress(Exception, concurrent.futures.CancelledError):
            self.call(self._stack.aclose())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


def _session_thread(config: pytest.Config) -> _SessionThread:
    found = getattr(config, "_flowctl_lua_tests", None)
    if found is None:
        found = _SessionThread(config)
        config._flowctl_lua_tests = found  # type: ignore[attr-defined]
        config.add_cleanup(found.close)
    return found


class LuaTestFile(pytest.File):
    """A ``*_test.lua`` file: its ``test_*`` functions, in source order."""

    def collect(self) -> Iterator[pytest.Item]:
        from runner.testing.discovery import discover

        runner = _session_thread(self.config)
        try:
            test_file = discover([self.path])[0]
        except FlowError as exc:
            raise self.CollectError(f"{exc.message}\nhint: {exc.hint}" if exc.hint else exc.message) from None
        session = runner.start()

        async def collect() -> Any:
            return session.collect(test_file)

        runner.call(collect())
        if test_file.error is not None:
            # a failed item rather than a collection error: pytest would stop the whole session
            yield LuaLoadFailure.from_parent(self, name="<load>", test_file=test_file)
            return
        for name in test_file.tests:
            yield LuaTestItem.from_parent(self, name=name, test_file=test_file)


class LuaTestItem(pytest.Item):
    """One ``test_*`` function of a Lua test file."""

    def __init__(self, *, test_file: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.test_file = test_file

    def runtest(self) -> None:
        runner = _session_thread(self.config)
        session = runner.start()
        outcome = runner.call(session.run(self.test_file, self.name))
        for line in outcome.output:
            print(line)
        if not outcome.passed:
            raise LuaTestFailure(outcome)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, LuaTestFailure):
            outcome = excinfo.value.outcome
            where = f"{outcome.where}: " if outcome.where else ""
            return f"{where}{outcome.message}" + (f"\n{outcome.detail.rstrip()}" if outcome.detail else "")
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{self.path.name}::{self.name}"


class LuaLoadFailure(pytest.Item):
    """A test file that cannot be loaded (syntax error, error at load time): one failure."""

    def __init__(self, *, test_file: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.test_file = test_file

    def runtest(self) -> None:
        raise LuaTestFailure(None)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        where = self.test_file.error_where
        return f"{where + ': ' if where else ''}{self.test_file.error}"

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{self.path.name}::<load>"


class LuaTestFailure(Exception):
    """A failed Lua test (its report is the Lua file:line, the message and the diff)."""

    def __init__(self, outcome: Any) -> None:
        super().__init__(outcome.message if outcome is not None else "the file cannot be loaded")
        self.outcome = outcome

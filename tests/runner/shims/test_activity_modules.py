"""The modules a ``function.lua`` activity sees, answered with real clocks and randomness.

The same Lua halves as in workflows, with the activity's handlers; the running attempt
(Temporal's heartbeat, info, cancellation) is a small stand-in recording what Lua asked for.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from typing import Any

import pytest

from runner.sandbox.driver import WorkflowDriver
from runner.sandbox.runtime import ACTIVITY_LIMITS, LuaSandbox
from runner.shims.activity_modules import ActivityCalls, install_activity_modules
from tests.support.sandboxes import workflow_main


class Attempt:
    """The running attempt as the activity modules reach it."""

    def __init__(self, *, cancelled: bool = False) -> None:
        self.heartbeats: list[tuple[Any, ...]] = []
        self.waits: list[float] = []
        self.cancelled = cancelled

    def calls(self, context: dict[str, Any] | None = None) -> ActivityCalls:
        return ActivityCalls(info=lambda: {"activity_type": "app:charge", "attempt": 2},
                             heartbeat=lambda *details: self.heartbeats.append(details),
                             is_cancelled=lambda: self.cancelled,
                             wait_cancelled=self.wait, context=dict(context or {}))

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        return self.cancelled


async def run_activity(body: str, *, attempt: Attempt | None = None, modules: Iterable[str] | None = None,
                       context: dict[str, Any] | None = None) -> Any:
    """Run ``body`` as the activity's function (first line = line 2 of ``wf.lua``); its result as plain data."""
    sandbox = LuaSandbox(limits=ACTIVITY_LIMITS, owner="app:charge")
    handlers = install_activity_modules(sandbox, (attempt or Attempt()).calls(context), modules)
    (value,) = await WorkflowDriver(sandbox, handlers).run(workflow_main(sandbox, body))
    return sandbox.export(value)


async def test_uuids_are_random_v4_and_time_ordered_v7() -> None:
    a, b, c, d = await run_activity("return {uuid.v4(), uuid.v4(), uuid.v7(), uuid.v7()}")
    assert a != b
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", a)
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", c)
    assert c[:13] <= d[:13], "v7 starts with the time in milliseconds"


async def test_time_now_is_the_wall_clock() -> None:
    before = time.time_ns()
    now = await run_activity("return time.now():unix_nano()")
    assert before <= now <= time.time_ns()


async def test_sleep_waits_on_the_attempt_and_fails_once_it_is_cancelled() -> None:
    attempt = Attempt()
    assert await run_activity("time.sleep('250ms')\ntime.sleep(0)\nreturn 'slept'", attempt=attempt) == "slept"
    assert attempt.waits == [0.25, 0.0]
    cancelled = Attempt(cancelled=True)
    result = await run_activity("return {pcall(time.sleep, '1s')}", attempt=cancelled)
    assert result == [False, "time.sleep: the activity was cancelled"]


async def test_time_after_is_workflow_only() -> None:
    assert await run_activity("return {pcall(time.after, '1s')}") == [
        False, "time.after is only available in workflows; use time.sleep in an activity"]


async def test_heartbeat_info_and_cancellation_reach_the_attempt() -> None:
    attempt = Attempt()
    result = await run_activity("activity.heartbeat({done = 3})\nactivity.heartbeat()\n"
                                "return {activity.info(), activity.is_cancelled()}", attempt=attempt)
    assert result == [{"activity_type": "app:charge", "attempt": 2}, False]
    assert attempt.heartbeats == [({"done": 3},), ()]


async def test_random_bytes_are_real_and_sized() -> None:
    size, hex_text = await run_activity("return {#crypto.random_bytes(16), crypto.random_hex(4)}")
    assert size == 16
    assert re.fullmatch(r"[0-9a-f]{8}", hex_text)
    assert await run_activity("return {pcall(crypto.random_bytes, 2 * 1024 * 1024)}") == [
        False, "crypto.random_bytes: n must be between 0 and 1048576"]


async def test_ctx_reads_the_attempts_context() -> None:
    assert await run_activity("return ctx.get('tenant')", context={"tenant": "t-1"}) == "t-1"


@pytest.mark.parametrize(("modules", "present"), [
    (["json"], ["json", "log"]),
    (None, ["activity", "crypto", "ctx", "errors", "json", "log", "time", "uuid"]),
])
async def test_only_listed_modules_are_there(modules: list[str] | None, present: list[str]) -> None:
    names = ["activity", "crypto", "ctx", "errors", "json", "log", "time", "uuid"]
    found = await run_activity("local out = {}\n"
                               "for _, n in ipairs({" + ", ".join(f"'{n}'" for n in names) + "}) do\n"
                               "  if _ENV[n] ~= nil then out[#out + 1] = n end\nend\nreturn out", modules=modules)
    assert found == present

"""The ``time`` module as workflow code sees it: Durations, Times, parsing, and argument checks.

No server: durations and times are Lua objects, and parsing is answered by the shim's Python
half. Timers themselves (``time.sleep``, ``time.after``) need a workflow and run in
tests/runner/temporal/; only what they refuse before starting one is checked here.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.sandboxes import lua_error, run_main, shim_run


async def lua(body: str) -> Any:
    """What ``body`` returns, as plain data."""
    run = shim_run(["time"])
    (value,) = await run_main(run, body)
    return run.sandbox.export(value)


@pytest.mark.parametrize(("expression", "text"), [
    ("time.SECOND * 90", "1m30s"),
    ("90 * time.SECOND", "1m30s"),
    ("time.HOUR + time.MINUTE * 30", "1h30m0s"),
    ("time.MILLISECOND * 250", "250ms"),
    ("time.SECOND * 1.5", "1.5s"),
    ("time.MICROSECOND * 3", "3us"),
    ("time.NANOSECOND * 7", "7ns"),
    ("time.NANOSECOND * 0", "0s"),
    ("-time.SECOND", "-1s"),
    ("time.HOUR / 4", "15m0s"),
    ("time.SECOND + '500ms'", "1.5s"),
    ("time.SECOND + 250", "1.25s"),
    ("time.MINUTE - time.SECOND", "59s"),
    ("time.parse_duration('1h30m')", "1h30m0s"),
    ("time.parse_duration('2h45m30.5s')", "2h45m30.5s"),
    ("time.Duration.from_nanoseconds(1500000)", "1500us"),
])
async def test_durations_compute_and_print_like_go(expression: str, text: str) -> None:
    assert await lua(f"return tostring({expression})") == text


async def test_durations_compare_and_convert() -> None:
    values = await lua("""
local d = time.parse_duration("1h30m")
return {time.SECOND < time.MINUTE, time.SECOND == time.MILLISECOND * 1000, time.SECOND <= "1s",
        time.HOUR / time.MINUTE, d:hours(), d:minutes(), d:seconds(), d:milliseconds(),
        d:microseconds(), d:nanoseconds(), time.Duration.is(d), time.Duration.is(5400)}
""")
    assert values == [True, True, True, 60.0, 1.5, 90.0, 5400.0, 5_400_000,
                      5_400_000_000, 5_400_000_000_000, True, False]


async def test_times_from_unix_seconds_print_rfc3339_and_do_arithmetic() -> None:
    values = await lua("""
local t = time.unix(1700000000, 250000000)
local later = t:add("1h")
return {tostring(t), t:unix(), t:unix_milli(), t:unix_nano(), later:format_rfc3339(),
        tostring(later:sub(t)), tostring(later - time.HOUR), tostring(t + time.SECOND),
        t:before(later), later:after(t), t:equal(time.unix(1700000000, 250000000)),
        t < later, time.Time.is(t), time.Time.is(time.SECOND), tostring(time.unix(0))}
""")
    assert values == [
        "2023-11-14T22:13:20.25Z", 1_700_000_000, 1_700_000_000_250, 1_700_000_000_250_000_000,
        "2023-11-14T23:13:20.25Z", "1h0m0s", "2023-11-14T22:13:20.25Z", "2023-11-14T22:13:21.25Z",
        True, True, True, True, True, False, "1970-01-01T00:00:00Z"]


async def test_sleeping_for_zero_returns_at_once_without_a_timer() -> None:
    assert await lua("time.sleep(0)\ntime.sleep('0s')\nreturn 'awake'") == "awake"


@pytest.mark.parametrize(("statement", "message"), [
    ("time.sleep(-1)", "wf.lua:3: time.sleep: duration must not be negative (got -1ms)"),
    ("time.after(-time.SECOND)", "wf.lua:3: time.after: duration must not be negative (got -1000ms)"),
    ("time.sleep({})", 'wf.lua:3: time.sleep: expected a duration ("5s", milliseconds or a time.Duration), '
                       "got table"),
    ("time.parse_duration(5)", 'wf.lua:3: time.parse_duration: expected a string like "1h30m", got number'),
    ("local _ = time.SECOND * time.SECOND", "wf.lua:3: a Duration can only be multiplied by a number"),
    ("local _ = time.SECOND / 'x'", "wf.lua:3: a Duration can only be divided by a number or a Duration"),
])
async def test_bad_arguments_fail_at_the_callers_line(statement: str, message: str) -> None:
    assert await lua_error(shim_run(["time"]), statement) == message


async def test_unparseable_durations_name_the_function_that_got_them() -> None:
    run = shim_run(["time"])
    for statement, what in [("time.parse_duration('soon')", "time.parse_duration"),
                            ("time.sleep('soon')", "time.sleep"), ("local _ = time.SECOND + 'soon'", "duration")]:
        message = await lua_error(run, statement)
        assert message.startswith("wf.lua:3: "), message
        assert what in message and "'soon'" in message, message
    assert await lua_error(run, "time.parse_duration('soon')") == (
        "wf.lua:3: time.parse_duration: 'soon' is not a duration (write a number with a unit "
        "(250ms, 5s, 10m, 1h30m, 2d) or an integer of milliseconds)")

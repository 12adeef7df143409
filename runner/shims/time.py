"""The ``time`` module in workflows: workflow time, durable timers, Time and Duration objects.

Durations are integer nanoseconds (like Go's ``time.Duration``), Times are integer
nanoseconds since the Unix epoch, both wrapped in small Lua objects with metamethods so
``5 * time.SECOND``, ``t1:sub(t0)`` and ``d1 < d2`` read naturally. ``time.now()`` is the
workflow's deterministic clock (the time of the current workflow task), ``time.sleep``
is a durable Temporal timer, ``time.after`` starts one and returns a channel-like handle.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import workflow

from registry.durations import parse_duration
from registry.errors import FlowError
from runner.sandbox.driver import Blocking, Handler, Reply, ShimError, read_only
from runner.sandbox.values import integer, text
from runner.shims.run_context import WorkflowRun

NS_PER_MS = 1_000_000


def handlers(run: WorkflowRun) -> dict[str, Handler]:
    """Command handlers for the time module, bound to one workflow run."""

    @read_only
    def now(_cmd: Any) -> Reply:
        return (workflow.time_ns(),)

    @read_only
    def parse(cmd: Any) -> Reply:
        what = text(cmd, "what", "time.parse_duration", optional=True) or "duration"
        try:
            delta = parse_duration(text(cmd, "text", what), what=what)
        except FlowError as exc:
            raise ShimError(f"{exc.message} ({exc.hint})" if exc.hint else exc.message) from None
        return (_ns(delta),)

    @read_only
    def format_rfc3339(cmd: Any) -> Reply:
        ns = integer(cmd, "ns", "time.format_rfc3339")
        try:
            moment = datetime.fromtimestamp(ns // 1_000_000_000, UTC)
        except (OverflowError, OSError, ValueError):
            raise ShimError(f"time.format_rfc3339: {ns} nanoseconds is not a representable time") from None
        fraction = ns % 1_000_000_000
        stamp = moment.strftime("%Y-%m-%dT%H:%M:%S")
        if fraction:
            stamp += ("." + f"{fraction:09d}").rstrip("0")
        return (stamp + "Z",)

    def sleep(cmd: Any) -> Reply | Blocking:
        ns = _checked_ns(cmd, "time.sleep")
        if ns == 0:
            return ()
        run.driver.command("time.sleep")  # a timer: counts against commands_per_task
        return Blocking(_timer(ns))

    def after(cmd: Any) -> Reply:
        ns = _checked_ns(cmd, "time.after")
        if ns > 0:
            run.driver.command("time.after")
        # forgotten by the driver once its value was received (docs/sandbox.md, Quotas)
        channel = run.driver.new_channel(1, lua_sends=False, once=True)

        async def fire() -> None:
            await _timer(ns)
            run.driver.deliver(channel, workflow.time_ns(), "a time.after timer")

        run.driver.start_background(fire())
        return (channel.id,)

    return {
        "time.now": now,
        "time.parse_duration": parse,
        "time.format_rfc3339": format_rfc3339,
        "time.sleep": sleep,
        "time.after": after,
    }


async def _timer(ns: int) -> Reply:
    """A durable timer; replies with the workflow time at which it fired."""
    if ns > 0:
        await workflow.sleep(timedelta(microseconds=ns / 1000))
    return (workflow.time_ns(),)


def _checked_ns(cmd: Any, what: str) -> int:
    value: int = integer(cmd, "ns", f"{what}: the duration in nanoseconds")
    if value < 0:
        raise ShimError(f"{what}: duration must not be negative (got {value // NS_PER_MS}ms)")
    return value


def _ns(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000

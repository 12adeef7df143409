"""The Lua modules a ``function.lua`` activity sees, answered with real-world effects.

Workflows and activities share the shims' Lua code (``runner/shims``): every shim
hands a command table to the Python side through the sandbox's ``yield_command``.
A workflow's driver answers deterministically (workflow time, seeded randomness);
an activity is ordinary code, so here the same commands get real answers — the wall
clock, ``os.urandom`` — and ``time.sleep`` really sleeps (waking early on cancellation).

Modules: ``json`` ``time`` ``uuid`` ``crypto`` ``ctx`` ``errors`` and ``activity``
(``heartbeat(details)``, ``info()``, ``is_cancelled()``, ``pending()``: ``return activity.pending()``
leaves the activity open for completion from outside by its task token).
"""

from __future__ import annotations

import logging
import os
import time as wall_clock
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from temporalio import activity

from runner.sandbox.driver import Handler, Reply, ShimError
from runner.sandbox.runtime import LuaSandbox
from runner.sandbox.values import flag, integer, lua_field, lua_value, text
from runner.shims import time as time_shim
from runner.shims.log import LEVELS as LOG_LEVELS
from runner.shims.workflow_modules import BUILTIN_MODULES, install_log, load_shim

__all__ = ["ACTIVITY_MODULES", "ActivityCalls", "activity_handlers", "install_activity_modules"]

#: Modules a function.lua entry may list (``errors`` is always available); the shims' Lua
#: halves are the workflow modules' own, ``activity.lua`` is this module's.
ACTIVITY_MODULES = ("json", "time", "uuid", "crypto", "ctx", "errors", "activity")

#: Largest ``crypto.random_bytes`` request (the sandbox memory limit would refuse more anyway).
MAX_RANDOM_BYTES = 1 << 20


@dataclass
class ActivityCalls:
    """What the activity modules reach in the running attempt (all callable from the Lua thread)."""

    info: Callable[[], Mapping[str, Any]]
    heartbeat: Callable[..., None]
    is_cancelled: Callable[[], bool]
    #: wait up to ``seconds``; returns True when the attempt was cancelled meanwhile
    wait_cancelled: Callable[[float], bool]
    context: dict[str, Any] = field(default_factory=dict)
    #: the marker ``activity.pending()`` returned (a result equal to it leaves the activity open)
    pending_marker: str | None = None


def install_activity_modules(sandbox: LuaSandbox, calls: ActivityCalls, modules: Iterable[str] | None, *,
                             owner: str = "this activity") -> dict[str, Handler]:
    """Add the modules an activity lists (all of them when it lists none); return their handlers.

    ``json`` and ``errors`` belong to the sandbox itself; the others reuse the workflow
    shims' Lua halves, answered here with real effects. ``print``/``log`` are always there.
    """
    wanted = sorted(set(ACTIVITY_MODULES) if modules is None else set(modules))
    sandbox.configure(owner, ", ".join(wanted))
    for name in wanted:
        if name in BUILTIN_MODULES:
            sandbox.add_module(name)
        elif name in ACTIVITY_MODULES:
            sandbox.add_module(name, load_shim(sandbox, name))
    install_log(sandbox)
    return activity_handlers(sandbox, calls)


def activity_handlers(sandbox: LuaSandbox, calls: ActivityCalls) -> dict[str, Handler]:
    """Command handlers answering the shims' commands with real clocks and randomness."""
    # parse_duration / format_rfc3339 are pure; now/sleep/after are workflow-only there.
    handlers: dict[str, Handler] = dict(time_shim.handlers(None))  # type: ignore[arg-type]

    def now(_cmd: Any) -> Reply:
        return (wall_clock.time_ns(),)

    def sleep(cmd: Any) -> Reply:
        ns = integer(cmd, "ns", "time.sleep: the duration in nanoseconds")
        if ns < 0:
            raise ShimError("time.sleep: expected a non-negative duration")
        if calls.wait_cancelled(ns / 1e9):
            raise ShimError("time.sleep: the activity was cancelled")
        return ()

    def after(_cmd: Any) -> Reply:
        raise ShimError("time.after is only available in workflows; use time.sleep in an activity")

    def heartbeat(cmd: Any) -> Reply:
        if flag(cmd, "has_details", "activity.heartbeat"):
            what = "activity.heartbeat(details)"
            calls.heartbeat(sandbox.export(lua_field(cmd, "details", what), path=what))
        else:
            calls.heartbeat()
        return ()

    def info(_cmd: Any) -> Reply:
        return (sandbox.import_(dict(calls.info()), path="activity.info()"),)

    def is_cancelled(_cmd: Any) -> Reply:
        return (calls.is_cancelled(),)

    def pending(_cmd: Any) -> Reply:
        if calls.pending_marker is None:
            calls.pending_marker = f"flowctl.activity.pending:{uuid.uuid4()}"
        return (calls.pending_marker,)

    def log(cmd: Any) -> Reply:
        level = LOG_LEVELS.get(text(cmd, "level", "log level"), logging.INFO)
        fields = lua_value(sandbox, lua_field(cmd, "fields", "log fields"), "log fields")
        where = text(cmd, "where", "log where", optional=True) or "?"
        extra = {"lua_where": where, **({"lua_fields": fields} if fields else {})}  # entry: the activity type
        activity.logger.log(level, f"[{where}] {text(cmd, 'message', 'log message')}", extra=extra)
        return ()

    def ctx_all(_cmd: Any) -> Reply:
        return (sandbox.import_(dict(calls.context), path="ctx"),)

    def uuid_v4(_cmd: Any) -> Reply:
        return (str(uuid.uuid4()),)

    def uuid_v7(_cmd: Any) -> Reply:
        return (str(_uuid7()),)

    def random_bytes(cmd: Any) -> Reply:
        n = integer(cmd, "n", "crypto.random_bytes: n")
        if not 0 <= n <= MAX_RANDOM_BYTES:
            raise ShimError(f"crypto.random_bytes: n must be between 0 and {MAX_RANDOM_BYTES}")
        return (os.urandom(n),)

    handlers.update({
        "time.now": now,
        "time.sleep": sleep,
        "time.after": after,
        "activity.heartbeat": heartbeat,
        "activity.info": info,
        "activity.is_cancelled": is_cancelled,
        "activity.pending": pending,
        "ctx.all": ctx_all,
        "log": log,
        "uuid.v4": uuid_v4,
        "uuid.v7": uuid_v7,
        "crypto.random_bytes": random_bytes,
    })
    return handlers


def _uuid7() -> uuid.UUID:
    """A time-ordered UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then random bits."""
    value = (wall_clock.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return uuid.UUID(int=value)

"""Quotas per run (docs/sandbox.md, Quotas): what a run may make the worker hold or send for it.

The Lua heap and the instruction budget bound what Lua itself does. A run also makes the worker
hold things outside its heap (channels, listeners, queued messages, the threads the driver
runs) and send things to Temporal (commands, payloads, error texts), which no Lua limit sees:
300,000 ``channel.new(0)`` held 800 MB of Python objects, 20,000 timers in one workflow task
broke the dev server's store, a 6 MB error message was more than gRPC carries. Each quota is a
field of :class:`~runner.sandbox.runtime.SandboxLimits`; going past one fails the run with a
non-retryable ``LIMIT_EXCEEDED`` naming it (:class:`QuotaExceeded`), except error texts, which
are truncated (an error must still say what went wrong). The worker's limits, its
``temporal.worker`` entry's ``limits:`` and the run's own entry's ``limits:`` combine, the
smallest winning (:func:`narrowed`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

from registry.revision import Revision
from registry.sandbox_limits import format_size, sandbox_limits, size_text
from runner.sandbox.failures import FlowFailure, LimitExceeded, LuaRuntimeError

__all__ = ["QUOTAS", "LimitExceedsWorker", "QueueMeter", "QuotaExceeded", "asked_limits", "bounded_error",
           "bounded_failure", "check_payload", "entry_limits", "narrowed", "payload_size", "quota_exceeded",
           "truncated", "worker_maxima"]

#: Every quota (a SandboxLimits field and a key of ``limits:`` in entries), with the unit its number counts.
QUOTAS: dict[str, str] = {
    "channels": "channels alive per run",
    "listeners": "process.listen topics per run",
    "queued_messages": "queued messages per run",
    "queued_bytes": "bytes of queued messages per run",
    "coroutines": "coroutines alive at once",
    "commands_per_task": "commands per workflow task",
    "task_payload_bytes": "payload bytes per workflow task",
    "payload_bytes": "bytes per payload",
    "error_bytes": "bytes per error message",
}

_Limits = TypeVar("_Limits")


class QuotaExceeded(LimitExceeded):
    """A run went past one of its quotas: LIMIT_EXCEEDED naming it (``details.limit``), never retryable."""

    _ADVICE: ClassVar[dict[str, str]] = {
        "channels": "close channels you are done with: a channel counts until it is closed and drained (a "
                    "time.after channel until its value was received)",
        "listeners": "listen to a fixed set of topics; the inbox (process.inbox) takes every other topic",
        "queued_messages": "receive messages as they come, or send fewer: a channel's buffer and the mailbox "
                           "hold them until someone receives",
        "queued_bytes": "pass large data by reference (a storage key, a URL), not in messages",
        "coroutines": "run a fixed pool of coroutines that take work from a channel",
        "commands_per_task": "start work in batches: wait for some results before starting more",
        "task_payload_bytes": "pass large data by reference (a storage key, a URL), and start work in batches",
        "payload_bytes": "pass large data by reference (a storage key, a URL), not as a value",
    }

    def __init__(self, limit: str, where: str, *, detail: str = "") -> None:
        super().__init__(limit, where, detail=detail)
        self.detail = detail

    def located(self, where: str) -> QuotaExceeded:
        """The same failure at ``where`` (the Lua file:line of the command that went past the quota)."""
        return QuotaExceeded(self.limit, where, detail=self.detail)


def quota_exceeded(limit: str, limits: Any, what: str = "", *, where: str = "?") -> QuotaExceeded:
    """The QuotaExceeded for quota ``limit`` of ``limits`` (``what``: what went past it, for the message)."""
    allowed = f"{getattr(limits, limit):,} {QUOTAS[limit]}"
    return QuotaExceeded(limit, where, detail=f"{what}; the limit is {allowed}" if what else allowed)


def narrowed(limits: _Limits, *overrides: Mapping[str, Any] | None) -> _Limits:
    """``limits`` with each quota an override sets lowered to it: the smallest value wins.

    The overrides are ``limits:`` mappings of entries (validated by their schemas); keys that
    are not quotas, and values that are not positive integers, are ignored.
    """
    lowered: dict[str, int] = {}
    for override in overrides:
        for name, value in (override or {}).items():
            if name in QUOTAS and isinstance(value, int) and not isinstance(value, bool) and value > 0:
                lowered[name] = min(value, lowered.get(name, getattr(limits, name)))
    return dataclasses.replace(limits, **lowered) if lowered else limits  # type: ignore[type-var]


def entry_limits(limits: _Limits, revision: Revision, entry: Callable[[str], Revision]) -> _Limits:
    """The limits of a run (or activity call) of ``revision``: ``limits`` (the worker process's) narrowed by
    the ``limits:`` of the temporal.worker entry it names and by its own (``entry``: an entry by ID), with
    the heap and instruction budget its own ``limits:`` asks for (:func:`asked_limits`)."""
    worker_id = revision.worker_id
    worker = None
    with contextlib.suppress(FlowFailure):  # a worker entry not applied (yet): the process's limits hold
        worker = entry(worker_id).data.get("limits") if worker_id is not None else None
    return asked_limits(narrowed(limits, worker, revision.data.get("limits")), revision)


class LimitExceedsWorker(FlowFailure):
    """An entry asks for more heap or instructions than this worker allows: LIMIT_EXCEEDS_WORKER, not retryable."""

    def __init__(self, revision: Revision, limit: str, asked: int, maximum: int) -> None:
        key, option = _ASKED[limit]
        shown = format_size if limit == "memory" else "{:,}".format
        wanted = size_text(asked) if limit == "memory" else str(asked)
        super().__init__(
            "LIMIT_EXCEEDS_WORKER",
            f"{revision.entry_id} asks for limits.{key} {shown(asked)}, more than this worker allows "
            f"({shown(maximum)}): lower the entry's limits.{key}, or start the worker with {option} {wanted}",
            retryable=False, details={"limit": limit, "asked": asked, "maximum": maximum})


#: limit -> (the key of an entry's ``limits:``, the ``flowctl worker`` option that raises its maximum)
_ASKED = {"memory": ("memory", "--max-memory"), "instructions": ("instructions_per_task", "--max-instructions")}


def asked_limits(limits: _Limits, revision: Revision) -> _Limits:
    """``limits`` with the ``memory`` / ``instructions_per_task`` the entry's ``limits:`` asks for.

    Each may go up to the worker's maximum (``max_memory``/``max_instructions``, else the worker's
    own value); asking for more raises :class:`LimitExceedsWorker` (validate cannot know the worker).
    """
    asked = sandbox_limits(revision.data.get("limits"))
    for limit, value in asked.items():
        ceiling = getattr(limits, f"max_{limit}", None) or getattr(limits, limit)
        if value > ceiling:
            raise LimitExceedsWorker(revision, limit, value, ceiling)
    return dataclasses.replace(limits, **asked) if asked else limits  # type: ignore[type-var]


def worker_maxima(limits: _Limits, max_memory: int | None, max_instructions: int | None) -> _Limits:
    """A worker's ``limits`` with ``flowctl worker --max-memory --max-instructions``: the most an entry may ask
    for, and the most any sandbox gets (a default above a maximum is lowered to it)."""
    changes: dict[str, int] = {}
    for limit, maximum in (("memory", max_memory), ("instructions", max_instructions)):
        if maximum is not None:
            changes[limit] = min(getattr(limits, limit), maximum)
            changes[f"max_{limit}"] = maximum
    return dataclasses.replace(limits, **changes) if changes else limits  # type: ignore[type-var]


# ---------------------------------------------------------------------- queued messages


class QueueMeter:
    """The values waiting in one run's mailbox and channel buffers, and the bytes Python holds for them.

    A value queued by Lua code (a send) that goes past a quota raises QuotaExceeded at the sender;
    one that arrives from outside (a signal, a timer) is kept and the run is stopped (``overflow``).
    """

    def __init__(self, limits: Any) -> None:
        self.limits = limits
        self.count = 0
        self.bytes = 0

    def add(self, size: int = 0, *, check: bool = True) -> None:
        """One more value waiting (``size`` bytes held by Python); QuotaExceeded past a quota when ``check``."""
        self.count += 1
        self.bytes += size
        if not check:
            return
        if self.count > self.limits.queued_messages:
            raise quota_exceeded("queued_messages", self.limits, f"{self.count:,} messages wait")
        if self.bytes > self.limits.queued_bytes:
            raise quota_exceeded("queued_bytes", self.limits, f"{self.bytes:,} bytes of messages wait")

    def remove(self, size: int = 0) -> None:
        """A value was taken (received, or moved from the mailbox into a channel)."""
        self.count -= 1
        self.bytes -= size


def queued_size(value: Any) -> int:
    """The bytes Python holds for a value in a channel buffer: a string's; a Lua table stays in the Lua heap."""
    return len(value) if isinstance(value, str | bytes) else 0


# ---------------------------------------------------------------------- payloads


def payload_size(value: Any) -> int:
    """The bytes ``value`` takes as a Temporal payload (its JSON text, as temporalio's converter writes it)."""
    if value is None or isinstance(value, bool | int | float):
        return 24  # never near a limit: no need to encode
    return len(json.dumps(value, separators=(",", ":")))


def check_payload(value: Any, limits: Any, what: str, *, where: str = "?") -> int:
    """``payload_size(value)``; QuotaExceeded (``payload_bytes``) when it is larger than one payload may be."""
    size = payload_size(value)
    if size > limits.payload_bytes:
        raise quota_exceeded("payload_bytes", limits, f"{what} is {size:,} bytes", where=where)
    return size


# ---------------------------------------------------------------------- error texts


def truncated(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes (at a character boundary), saying so at the end."""
    if len(text) <= limit // 4:
        return text  # a character is at most 4 bytes: short enough without encoding it
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return text
    note = f" ... [truncated: {len(data):,} bytes; the limit is {limit:,} (limits.error_bytes)]"
    keep = max(limit - len(note), 0)
    return data[:keep].decode("utf-8", "ignore") + note


def bounded_error(error: LuaRuntimeError, limits: Any) -> LuaRuntimeError:
    """``error`` with its message, traceback and string value cut to ``limits.error_bytes`` (itself if short)."""
    limit = limits.error_bytes
    message, trace = truncated(error.message, limit), truncated(error.traceback, limit)
    value = truncated(error.value, limit) if isinstance(error.value, str) else error.value
    if message is error.message and trace is error.traceback and value is error.value:
        return error
    return LuaRuntimeError(message, traceback=trace, value=value, where=error.where)


def bounded_failure(failure: FlowFailure, limits: Any) -> FlowFailure:
    """``failure`` fit to be sent to Temporal: its message cut to ``limits.error_bytes`` and its details
    replaced by a note when larger than one payload may be (itself when it fits)."""
    message = truncated(failure.message, limits.error_bytes)
    details = failure.details
    if details is not None:
        size = payload_size(details)
        if size > limits.payload_bytes:
            details = {"dropped": f"the error's details were {size:,} bytes; the limit is "
                                  f"{limits.payload_bytes:,} (limits.payload_bytes)"}
    if message is failure.message and details is failure.details:
        return failure
    return FlowFailure(failure.kind, message, retryable=failure.retryable, details=details, where=failure.where)

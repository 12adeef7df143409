"""flowctl's error model on the Python side (docs/sandbox.md, Errors), and the errors the Lua sandbox raises.

A :class:`FlowFailure` is what a Lua error object is: a kind (``NOT_FOUND``, ``INVALID``,
``INTERNAL``, ``TIMEOUT``, ``CANCELED``, ``TERMINATED``, ``LIMIT_EXCEEDED`` or a user
kind), a message, whether a retry may help, details, and the Lua file:line it was raised
at. runner.temporal.failures carries it across Temporal; the sandbox runtime carries it across
the Lua boundary (``LuaSandbox.failure_of`` / ``LuaSandbox.error_object``).
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "FlowFailure",
    "LimitExceeded",
    "LuaRuntimeError",
    "ShimError",
    "ShimFailure",
]


class FlowFailure(Exception):
    """A typed failure of a workflow, activity or shim call, as Lua sees it in ``err``."""

    def __init__(self, kind: str, message: str, *, retryable: bool = True, details: Any = None,
                 where: str | None = None) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message
        self.retryable = retryable
        self.details = details
        self.where = where


class LimitExceeded(FlowFailure):
    """A sandbox limit (memory, instructions, stack) stopped the Lua code: never retryable."""

    #: what the hint says about each limit
    _ADVICE: ClassVar[dict[str, str]] = {
        "memory": "the Lua heap grew past the memory limit; keep less data in the workflow "
                  "(pass references to activities, not whole documents)",
        "instructions": "the code ran too long without waiting (an endless loop?); move heavy "
                        "computation into an activity",
        "stack": "the call stack grew too deep (unbounded recursion?); use a loop",
    }

    def __init__(self, limit: str, where: str, *, detail: str = "") -> None:
        advice = self._ADVICE.get(limit, "")
        message = f"sandbox {limit} limit exceeded at {where}"
        if detail:
            message += f" ({detail})"
        if advice:
            message += f": {advice}"
        super().__init__("LIMIT_EXCEEDED", message, retryable=False, details={"limit": limit}, where=where)
        self.limit = limit


class LuaRuntimeError(Exception):
    """A Lua error nobody caught: its message, the Lua traceback, and the raw error value."""

    def __init__(self, message: str, *, traceback: str = "", value: Any = None,
                 where: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.traceback = traceback
        #: the Lua value passed to error() (a string, an error object, ...)
        self.value = value
        self.where = where

    def __str__(self) -> str:
        return self.traceback or self.message


class ShimError(Exception):
    """A misuse of a shim (bad argument, unknown handle): raised in Lua at the caller's line."""


class ShimFailure(ShimError):
    """A typed failure raised in Lua as an error object (``err:kind()``), e.g. CANCELED."""

    def __init__(self, failure: FlowFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure

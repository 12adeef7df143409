"""flowctl's error model on the Python side (SPEC §5.7), and the errors the Lua sandbox raises.

A :class:`FlowFailure` is what a Lua error object is: a kind (``NOT_FOUND``, ``INVALID``,
``INTERNAL``, ``TIMEOUT``, ``CANCELED``, ``TERMINATED``, ``LIMIT_EXCEEDED`` or a user
kind), a message, whether a retry may help, details, and the Lua file:line it was raised
at. runner.temporal.failures carries it across Temporal; this module carries it across
the Lua boundary.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from runner.sandbox.runtime import LuaSandbox

__all__ = [
    "FlowFailure",
    "LimitExceeded",
    "LuaRuntimeError",
    "failure_from_lua",
    "failure_to_lua",
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


def failure_from_lua(sandbox: LuaSandbox, value: Any) -> FlowFailure:
    """The FlowFailure for a Lua error value: an ``errors.new`` object, a string, or anything else."""
    if isinstance(value, str):
        return FlowFailure("INTERNAL", value, retryable=True)
    fields = sandbox.error_fields(value)
    if fields is not None:
        kind, message, retryable, details, where = fields
        return FlowFailure(kind, message, retryable=retryable, details=details, where=where)
    if value is None or isinstance(value, bool | int | float):
        return FlowFailure("INTERNAL", f"error value {value!r}", retryable=True)
    try:
        shown = sandbox.export(value, "error")
    except FlowFailure:
        shown = f"a {sandbox.lua_type(value)} value"
    return FlowFailure("INTERNAL", f"error value {shown}", retryable=True, details=None)


def failure_to_lua(sandbox: LuaSandbox, failure: FlowFailure) -> Any:
    """A Lua error object (``err:kind()``, ``err:message()``...) carrying ``failure``."""
    return sandbox.new_error(failure.kind, failure.message, retryable=failure.retryable,
                             details=failure.details, where=failure.where)

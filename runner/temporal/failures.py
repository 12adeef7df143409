"""Between flowctl's failures and Temporal's: errors and activity options.

A :class:`~runner.sandbox.failures.FlowFailure` crosses Temporal as an ``ApplicationError``
whose ``type`` is the error kind, ``non_retryable`` is ``not retryable`` (and always
true for kinds that can never succeed on retry), and ``details`` are
``[details, where]`` — so a Lua error object survives an activity or child workflow
boundary with its kind, retryable flag, message, details and Lua file:line.

Coming back, Temporal's own failures get kinds a Lua author can branch on:
``TimeoutError`` → ``TIMEOUT``, ``CancelledError`` → ``CANCELED``, ``TerminatedError``
→ ``TERMINATED``, and an ``ApplicationError`` whose type is not a flowctl kind (a
Python exception class name such as ``ValueError``) → ``INTERNAL`` with the original
type kept in the details.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    FailureError,
    TerminatedError,
    TimeoutError,
)

from registry.durations import parse_duration
from registry.errors import FlowError
from registry.revision import Revision
from runner.sandbox.failures import FlowFailure

__all__ = [
    "ACTIVITY_OPTION_KEYS",
    "DEFAULT_START_TO_CLOSE",
    "NEVER_RETRYABLE_KINDS",
    "activity_options",
    "failure_from_temporal",
    "to_application_error",
]

#: Kinds no retry can fix: always sent as non-retryable.
NEVER_RETRYABLE_KINDS = frozenset({"INVALID", "NOT_FOUND", "LIMIT_EXCEEDED", "CANCELED", "TERMINATED"})
#: A flowctl error kind: what users write in errors.new{kind=...} (upper snake case).
KIND_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
DEFAULT_START_TO_CLOSE = timedelta(minutes=10)
#: Option keys accepted by funcs.new():with_options({...}) and their activity-entry spelling.
ACTIVITY_OPTION_KEYS = {
    "activity.start_to_close_timeout": "start_to_close_timeout",
    "activity.schedule_to_close_timeout": "schedule_to_close_timeout",
    "activity.schedule_to_start_timeout": "schedule_to_start_timeout",
    "activity.heartbeat_timeout": "heartbeat_timeout",
    "activity.retry_policy": "retry_policy",
    "activity.task_queue": "task_queue",
}
_RETRY_KEYS = {"initial_interval", "backoff_coefficient", "maximum_interval", "maximum_attempts",
               "non_retryable_error_kinds"}


def to_application_error(failure: FlowFailure) -> ApplicationError:
    """The ApplicationError that carries ``failure`` across Temporal."""
    non_retryable = (not failure.retryable) or failure.kind in NEVER_RETRYABLE_KINDS
    return ApplicationError(failure.message, failure.details, failure.where,
                            type=failure.kind, non_retryable=non_retryable)


def failure_from_temporal(error: BaseException) -> FlowFailure:
    """A FlowFailure from what ``execute_activity`` / a child workflow raised.

    ActivityError / ChildWorkflowError only say *that* the call failed; the cause
    says why, so the cause chain is followed to the first informative failure.
    """
    cause: BaseException = error
    while isinstance(cause, ActivityError | ChildWorkflowError) and cause.cause is not None:
        cause = cause.cause
    if isinstance(cause, ApplicationError):
        return _from_application_error(cause)
    if isinstance(cause, TimeoutError):
        kind_of_timeout = cause.type.name.lower() if cause.type is not None else "unknown"
        return FlowFailure("TIMEOUT", f"{_describe(error)} timed out ({kind_of_timeout} timeout)",
                           retryable=True, details={"timeout_type": kind_of_timeout})
    if isinstance(cause, CancelledError):
        return FlowFailure("CANCELED", f"{_describe(error)} was canceled", retryable=False)
    if isinstance(cause, TerminatedError):
        return FlowFailure("TERMINATED", f"{_describe(error)} was terminated", retryable=False)
    message = cause.message if isinstance(cause, FailureError) else str(cause)
    return FlowFailure("INTERNAL", message or type(cause).__name__, retryable=True)


def _from_application_error(error: ApplicationError) -> FlowFailure:
    details: Any = None
    where: str | None = None
    raw = list(error.details)
    if raw and error.type and KIND_RE.match(error.type):
        # Sent by flowctl (to_application_error): [details, where].
        details = raw[0]
        if len(raw) > 1 and isinstance(raw[1], str):
            where = raw[1]
        kind = error.type
    else:
        # Sent by plain Python code: the type is an exception class name.
        kind = error.type if error.type and KIND_RE.match(error.type) else "INTERNAL"
        extra: dict[str, Any] = {}
        if error.type and kind != error.type:
            extra["type"] = error.type
        if raw:
            extra["details"] = raw if len(raw) > 1 else raw[0]
        details = extra or None
    return FlowFailure(kind, error.message, retryable=not error.non_retryable, details=details, where=where)


def _describe(error: BaseException) -> str:
    if isinstance(error, ActivityError):
        return f"activity {error.activity_type}"
    if isinstance(error, ChildWorkflowError):
        return f"child workflow {error.workflow_type}"
    return "the operation"


def activity_options(revision: Revision, overrides: Mapping[str, Any] | None = None, *,
                     task_queue: str | None = None) -> dict[str, Any]:
    """Keyword arguments for ``workflow.execute_activity`` from an activity entry plus call options.

    ``overrides`` are the executor options (``activity.retry_policy`` ...); a retry policy
    override is merged key by key onto the entry's, so ``{maximum_attempts = 1}`` keeps the
    entry's intervals. Raises FlowError (naming the option) for unknown keys or bad values.
    """
    entry_options = revision.data.get("options") or {}
    merged: dict[str, Any] = {k: v for k, v in entry_options.items() if k in ACTIVITY_OPTION_KEYS.values()}
    for key, value in (overrides or {}).items():
        target = ACTIVITY_OPTION_KEYS.get(key)
        if target is None:
            known = ", ".join(sorted(ACTIVITY_OPTION_KEYS))
            raise FlowError(f"unknown activity option {key!r}", hint=f"use one of: {known}")
        if target == "retry_policy" and isinstance(value, Mapping):
            base = merged.get("retry_policy")
            value = {**(base if isinstance(base, Mapping) else {}), **value}
        merged[target] = value

    kwargs: dict[str, Any] = {
        "start_to_close_timeout": parse_duration(
            merged.get("start_to_close_timeout", "10m"), what="start_to_close_timeout"),
    }
    for key in ("schedule_to_close_timeout", "schedule_to_start_timeout", "heartbeat_timeout"):
        if merged.get(key) is not None:
            kwargs[key] = parse_duration(merged[key], what=key)
    if merged.get("retry_policy") is not None:
        kwargs["retry_policy"] = retry_policy(merged["retry_policy"])
    queue = merged.get("task_queue") or task_queue
    if queue is not None:
        if not isinstance(queue, str):
            raise FlowError("activity.task_queue must be a string",
                            hint='name the task queue, e.g. "app:worker"')
        kwargs["task_queue"] = queue
    return kwargs


def retry_policy(spec: Any, *, what: str = "retry_policy") -> RetryPolicy:
    """A temporalio RetryPolicy from the YAML/Lua form (durations as strings or milliseconds)."""
    if not isinstance(spec, Mapping):
        raise FlowError(f"{what} must be a table/mapping", hint="e.g. {maximum_attempts = 3}")
    unknown = set(spec) - _RETRY_KEYS
    if unknown:
        raise FlowError(f"{what}: unknown key(s) {', '.join(sorted(map(str, unknown)))}",
                        hint=f"use: {', '.join(sorted(_RETRY_KEYS))}")
    policy = RetryPolicy()
    if spec.get("initial_interval") is not None:
        policy.initial_interval = parse_duration(spec["initial_interval"], what=f"{what}.initial_interval")
    if spec.get("backoff_coefficient") is not None:
        coefficient = spec["backoff_coefficient"]
        if isinstance(coefficient, bool) or not isinstance(coefficient, int | float) or coefficient < 1:
            raise FlowError(f"{what}.backoff_coefficient must be a number >= 1", hint="e.g. 2.0")
        policy.backoff_coefficient = float(coefficient)
    if spec.get("maximum_interval") is not None:
        policy.maximum_interval = parse_duration(spec["maximum_interval"], what=f"{what}.maximum_interval")
    if spec.get("maximum_attempts") is not None:
        attempts = spec["maximum_attempts"]
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 0:
            raise FlowError(f"{what}.maximum_attempts must be an integer >= 0 (0 = unlimited)", hint="e.g. 3")
        policy.maximum_attempts = attempts
    kinds = spec.get("non_retryable_error_kinds")
    if kinds is not None:
        if not isinstance(kinds, list | tuple) or not all(isinstance(k, str) for k in kinds):
            raise FlowError(f"{what}.non_retryable_error_kinds must be a list of error kinds",
                            hint='e.g. {"INVALID", "NOT_FOUND"}')
        policy.non_retryable_error_types = list(kinds)
    return policy

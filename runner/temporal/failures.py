"""Between flowctl's failures and Temporal's errors, both ways.

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
from typing import Any

from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    FailureError,
    RetryState,
    TerminatedError,
    TimeoutError,
)

from registry.contracts import KIND_OF_FIELD, contract_message, entry_violation
from registry.revision import Revision
from runner.sandbox.failures import FlowFailure

__all__ = [
    "NEVER_RETRYABLE_KINDS",
    "contract_failure",
    "failure_from_temporal",
    "to_application_error",
]

#: Kinds no retry can fix: always sent as non-retryable.
NEVER_RETRYABLE_KINDS = frozenset({"INVALID", "NOT_FOUND", "LIMIT_EXCEEDED", "CANCELED", "TERMINATED",
                                   "INVALID_INPUT", "INVALID_OUTPUT"})
#: A flowctl error kind: what users write in errors.new{kind=...} (upper snake case).
KIND_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")


def to_application_error(failure: FlowFailure) -> ApplicationError:
    """The ApplicationError that carries ``failure`` across Temporal."""
    non_retryable = (not failure.retryable) or failure.kind in NEVER_RETRYABLE_KINDS
    return ApplicationError(failure.message, failure.details, failure.where,
                            type=failure.kind, non_retryable=non_retryable)


def contract_failure(revision: Revision, field: str, value: Any) -> FlowFailure | None:
    """INVALID_INPUT / INVALID_OUTPUT (never retryable) when ``value`` breaks the revision's ``field`` schema.

    The details are ``{path, rule, schema_path, message}`` (registry.contracts.Violation).
    """
    violation = entry_violation(revision.digest, revision.data, field, value)
    if violation is None:
        return None
    return FlowFailure(KIND_OF_FIELD[field], contract_message(revision.entry_id, field, violation),
                       retryable=False, details=violation.to_dict())


def failure_from_temporal(error: BaseException) -> FlowFailure:
    """A FlowFailure from what ``execute_activity`` / a child workflow raised.

    ActivityError / ChildWorkflowError only say *that* the call failed; the cause
    says why, so the cause chain is followed to the first informative failure. Their retry
    state says what Temporal did: ``NON_RETRYABLE_FAILURE`` (the error's kind is in the retry
    policy's ``non_retryable_error_kinds``) makes the failure non-retryable, as ``err:retryable()`` reads.
    """
    cause: BaseException = error
    never_retried = False
    while isinstance(cause, ActivityError | ChildWorkflowError) and cause.cause is not None:
        never_retried = never_retried or cause.retry_state == RetryState.NON_RETRYABLE_FAILURE
        cause = cause.cause
    if isinstance(cause, ApplicationError):
        failure = _from_application_error(cause)
        failure.retryable = failure.retryable and not never_retried
        return failure
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

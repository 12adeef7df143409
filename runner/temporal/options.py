"""Options as temporalio keyword arguments: workflow start options, activity options, retry policies.

``temporal.workflow.*`` start options follow reference/003's table.

One translation serves both ways of starting a workflow: a child from a workflow
(``workflow.start_child_workflow``) and a client start from outside (``Client.start_workflow``).
Keys may be written with or without the ``temporal.workflow.`` prefix; durations are
strings (``5s``) or milliseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from temporalio.common import (
    RetryPolicy,
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.workflow import ChildWorkflowCancellationType, ParentClosePolicy

from registry.durations import parse_duration
from registry.errors import FlowError
from registry.revision import Revision
from runner.temporal.memo import reserved_refusal

__all__ = ["ACTIVITY_OPTION_KEYS", "CONFLICT_POLICIES", "DEFAULT_START_TO_CLOSE", "START_OPTIONS", "activity_options",
           "normalize", "retry_policy", "start_kwargs"]

DEFAULT_START_TO_CLOSE = timedelta(minutes=10)
#: Temporal keeps maximum_attempts in 32 bits.
MAX_ATTEMPTS = 2**31 - 1
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
START_OPTIONS = (
    "id", "task_queue", "execution_timeout", "run_timeout", "task_timeout", "id_conflict_policy",
    "id_reuse_policy", "execution_error_when_already_started", "retry_policy", "cron_schedule", "memo",
    "search_attributes", "enable_eager_start", "start_delay", "parent_close_policy", "wait_for_cancellation",
    "namespace",
)
CONFLICT_POLICIES = {"use_existing": WorkflowIDConflictPolicy.USE_EXISTING, "fail": WorkflowIDConflictPolicy.FAIL,
                     "terminate_existing": WorkflowIDConflictPolicy.TERMINATE_EXISTING}
_REUSE = {"allow_duplicate": WorkflowIDReusePolicy.ALLOW_DUPLICATE,
          "allow_duplicate_failed_only": WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
          "reject_duplicate": WorkflowIDReusePolicy.REJECT_DUPLICATE}
_PARENT_CLOSE = {"terminate": ParentClosePolicy.TERMINATE, "abandon": ParentClosePolicy.ABANDON,
                 "request_cancel": ParentClosePolicy.REQUEST_CANCEL}


def normalize(*layers: Mapping[str, Any] | None) -> dict[str, Any]:
    """Merge option tables (later wins) with the prefix removed; unknown keys are an error."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in (layer or {}).items():
            merged[str(key).removeprefix("temporal.workflow.")] = value
    unknown = sorted(set(merged) - set(START_OPTIONS))
    if unknown:
        raise FlowError(f"unknown start option(s) {', '.join('temporal.workflow.' + k for k in unknown)}",
                        hint="known: " + ", ".join("temporal.workflow." + k for k in START_OPTIONS))
    memo = merged.get("memo")
    refusal = reserved_refusal(memo) if isinstance(memo, Mapping) else None
    if refusal is not None:
        raise FlowError(f"temporal.workflow.memo: {refusal}",
                        hint="flowctl writes the run's revision, context and start messages there itself")
    return merged


def conflict_policy(options: Mapping[str, Any], *, explicit_id: bool) -> str:
    """use_existing by default for an explicit id or name (idempotent starts), fail otherwise."""
    if options.get("execution_error_when_already_started"):
        return "fail"
    policy = str(options.get("id_conflict_policy") or ("use_existing" if explicit_id else "fail"))
    if policy not in CONFLICT_POLICIES:
        raise FlowError(f"id_conflict_policy {policy!r} is not one of {', '.join(CONFLICT_POLICIES)}",
                        hint="use_existing returns the running workflow; fail reports it; terminate_existing "
                             "replaces it")
    return policy


def start_kwargs(options: Mapping[str, Any], *, child: bool) -> dict[str, Any]:
    """temporalio keyword arguments for the options (id, task queue and memo are the caller's)."""
    kwargs: dict[str, Any] = {}
    for key in ("execution_timeout", "run_timeout", "task_timeout"):
        if options.get(key) is not None:
            kwargs[key] = parse_duration(options[key], what=f"temporal.workflow.{key}")
    if options.get("id_reuse_policy") is not None:
        kwargs["id_reuse_policy"] = _choice(options, "id_reuse_policy", _REUSE)
    if options.get("retry_policy") is not None:
        kwargs["retry_policy"] = retry_policy(options["retry_policy"], what="temporal.workflow.retry_policy")
    if options.get("cron_schedule"):
        kwargs["cron_schedule"] = str(options["cron_schedule"])
    search = options.get("search_attributes")
    if isinstance(search, Mapping) and search:
        pairs = [_search_pair(str(k), v) for k, v in sorted(search.items())]
        kwargs["search_attributes"] = TypedSearchAttributes(pairs)
    if child:
        if options.get("parent_close_policy") is not None:
            kwargs["parent_close_policy"] = _choice(options, "parent_close_policy", _PARENT_CLOSE)
        if options.get("wait_for_cancellation"):
            kwargs["cancellation_type"] = ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED
        for unsupported in ("namespace", "start_delay"):
            if options.get(unsupported) is not None:
                raise FlowError(f"temporal.workflow.{unsupported} is not available for child workflows",
                                hint="Temporal starts children at once, in the parent's namespace")
    else:
        if options.get("start_delay") is not None:
            kwargs["start_delay"] = parse_duration(options["start_delay"], what="temporal.workflow.start_delay")
        if options.get("enable_eager_start"):
            kwargs["request_eager_start"] = True
        if options.get("namespace") is not None:
            raise FlowError("temporal.workflow.namespace cannot change the client's namespace",
                            hint="start it with a temporal.client entry for that namespace")
    return kwargs


def _choice(options: Mapping[str, Any], key: str, table: Mapping[str, Any]) -> Any:
    value = table.get(str(options[key]))
    if value is None:
        raise FlowError(f"temporal.workflow.{key} {options[key]!r} is not one of {', '.join(table)}",
                        hint=f"write one of: {', '.join(table)}")
    return value


def _search_pair(name: str, value: Any) -> SearchAttributePair[Any]:
    if isinstance(value, bool):
        return SearchAttributePair(SearchAttributeKey.for_bool(name), value)
    if isinstance(value, int):
        return SearchAttributePair(SearchAttributeKey.for_int(name), value)
    if isinstance(value, float):
        return SearchAttributePair(SearchAttributeKey.for_float(name), value)
    return SearchAttributePair(SearchAttributeKey.for_keyword(name), str(value))


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
    if not kwargs["start_to_close_timeout"] and not kwargs.get("schedule_to_close_timeout"):
        raise FlowError("start_to_close_timeout is 0 and there is no schedule_to_close_timeout",
                        hint="give the activity a positive timeout (default 10m)")
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
        if isinstance(coefficient, bool) or not isinstance(coefficient, int | float) or not 1 <= coefficient <= 100:
            raise FlowError(f"{what}.backoff_coefficient must be a number from 1 to 100", hint="e.g. 2.0")
        policy.backoff_coefficient = float(coefficient)
    if spec.get("maximum_interval") is not None:
        policy.maximum_interval = parse_duration(spec["maximum_interval"], what=f"{what}.maximum_interval")
    if spec.get("maximum_attempts") is not None:
        attempts = spec["maximum_attempts"]
        if isinstance(attempts, float) and attempts.is_integer():
            attempts = int(attempts)  # YAML 3.0: JSON Schema counts it as an integer too
        if isinstance(attempts, bool) or not isinstance(attempts, int) or not 0 <= attempts <= MAX_ATTEMPTS:
            raise FlowError(f"{what}.maximum_attempts must be an integer from 0 to {MAX_ATTEMPTS} (0 = unlimited)",
                            hint="e.g. 3")
        policy.maximum_attempts = attempts
    kinds = spec.get("non_retryable_error_kinds")
    if kinds is not None:
        if not isinstance(kinds, list | tuple) or not all(isinstance(k, str) for k in kinds):
            raise FlowError(f"{what}.non_retryable_error_kinds must be a list of error kinds",
                            hint='e.g. {"INVALID", "NOT_FOUND"}')
        policy.non_retryable_error_types = list(kinds)
    if policy.maximum_attempts != 1 and policy.maximum_interval \
            and policy.maximum_interval < (policy.initial_interval or timedelta(seconds=1)):
        raise FlowError(f"{what}.maximum_interval is shorter than initial_interval: Temporal refuses this policy",
                        hint="make maximum_interval at least initial_interval, or leave it out")
    return policy

"""``ctx`` values reach activities: a Temporal header on every activity a flowctl workflow starts.

Children get the context in their memo (runner/shims/process.py); activities have no memo,
so the workflow side of this interceptor adds header ``flowctl-context`` and the activity
side puts it where ``ctx.get`` / ``ctx.all`` (and Python handlers, via :func:`current_context`)
read it.
"""

from __future__ import annotations

import contextvars
from typing import Any

import temporalio.converter
from temporalio import workflow
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
    StartActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from runner.temporal.memo import CONTEXT_MEMO

__all__ = ["ContextInterceptor", "current_context"]

HEADER = "flowctl-context"
_CONTEXT: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("flowctl_context", default=None)


def current_context() -> dict[str, Any]:
    """The context of the running activity (what ``ctx.all()`` returns in Lua)."""
    return dict(_CONTEXT.get() or {})


class ContextInterceptor(Interceptor):
    """Carries the workflow's ``flowctl.context`` memo to its activities."""

    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        return _WorkflowInbound

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityInbound(next)


class _WorkflowInbound(WorkflowInboundInterceptor):
    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_WorkflowOutbound(outbound))


class _WorkflowOutbound(WorkflowOutboundInterceptor):
    def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle[Any]:
        context = workflow.memo_value(CONTEXT_MEMO, None)
        if isinstance(context, dict) and context:
            payload = workflow.payload_converter().to_payload(context)
            input.headers = {**input.headers, HEADER: payload}
        return super().start_activity(input)


class _ActivityInbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        payload = input.headers.get(HEADER)
        if payload is None:
            return await super().execute_activity(input)
        value = temporalio.converter.default().payload_converter.from_payload(payload)
        token = _CONTEXT.set(value if isinstance(value, dict) else None)
        try:
            return await super().execute_activity(input)
        finally:
            _CONTEXT.reset(token)

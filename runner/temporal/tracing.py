"""OpenTelemetry tracing (``flowctl worker --otel``; ``flowctl run`` when the caller traces).

temporalio's :class:`~temporalio.contrib.opentelemetry.TracingInterceptor` makes the spans and
carries the context in Temporal headers, so a client start, the workflow run, its activities
and its child workflows form one trace. flowctl adds what an operator looks for: every
workflow and activity span carries ``flowctl.entry_id`` and ``flowctl.revision``.

The exporter is configured by the standard ``OTEL_EXPORTER_OTLP_*`` / ``OTEL_SERVICE_NAME``
environment (OTLP over gRPC). ``flowctl run`` joins the caller's trace from ``TRACEPARENT``
(the W3C trace context in the environment, as CI systems and ``otel-cli`` set it) and traces
when that or an OTLP endpoint is set. OpenTelemetry is optional: ``pip install 'flowctl[otel]'``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from registry.errors import FlowError
from runner.revision_source import RevisionSource
from runner.sandbox.failures import FlowFailure
from runner.temporal.memo import REVISION_MEMO

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer

__all__ = ["ENTRY_ATTRIBUTE", "REVISION_ATTRIBUTE", "caller_context", "client_span", "configure_tracing",
           "ensure_provider", "traced_client", "tracing_interceptor", "tracing_wanted"]

ENTRY_ATTRIBUTE = "flowctl.entry_id"
REVISION_ATTRIBUTE = "flowctl.revision"
_INSTALL_HINT = "install the tracing extra: pip install 'flowctl[otel]'"


def _require_otel() -> Any:
    try:
        from temporalio.contrib import opentelemetry as temporal_otel
    except ImportError:
        raise FlowError("OpenTelemetry is not installed", hint=_INSTALL_HINT) from None
    return temporal_otel


def configure_tracing(service_name: str = "flowctl-worker") -> TracerProvider:
    """Install a global tracer provider exporting over OTLP (the ``OTEL_EXPORTER_OTLP_*`` environment)."""
    _require_otel()
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        raise FlowError("the OpenTelemetry SDK or its OTLP exporter is not installed", hint=_INSTALL_HINT) from None
    name = os.environ.get("OTEL_SERVICE_NAME") or service_name
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider


def ensure_provider(service_name: str = "flowctl") -> None:
    """Export over OTLP when an endpoint is configured and nothing installed a tracer provider yet."""
    from opentelemetry import trace

    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if endpoint and isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        configure_tracing(service_name)


def tracing_interceptor(source: RevisionSource, tracer: Tracer | None = None) -> Interceptor:
    """temporalio's tracing interceptor, its workflow and activity spans labelled with entry and revision."""
    temporal_otel = _require_otel()
    base = temporal_otel.TracingInterceptor

    class _WorkflowSpans(temporal_otel.TracingWorkflowInboundInterceptor):  # type: ignore[name-defined]
        def _completed_span(self, span_name: str, *, additional_attributes: Any = None, **rest: Any) -> None:
            super()._completed_span(span_name, additional_attributes={**_workflow_labels(source),
                                                                       **(additional_attributes or {})}, **rest)

    class _FlowctlTracing(base):  # type: ignore[misc, valid-type]
        def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
            super().workflow_interceptor_class(input)  # registers the span extern function
            return _WorkflowSpans

        def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
            return super().intercept_activity(_ActivitySpans(next, source))

    interceptor: Interceptor = _FlowctlTracing(tracer)
    return interceptor


def _workflow_labels(source: RevisionSource) -> dict[str, str]:
    """Entry ID and revision of the running workflow (what it was pinned to), for its spans."""
    info = workflow.info()
    digest = workflow.memo_value(REVISION_MEMO, None)
    try:
        revision = source.workflow(info.workflow_type, digest if isinstance(digest, str) else None)
    except FlowFailure:
        return {}
    return {ENTRY_ATTRIBUTE: revision.entry_id, REVISION_ATTRIBUTE: revision.digest}


class _ActivitySpans(ActivityInboundInterceptor):
    """Runs inside the RunActivity span: labels it with the activity entry and its current revision."""

    def __init__(self, next: ActivityInboundInterceptor, source: RevisionSource) -> None:
        super().__init__(next)
        self.source = source

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        from opentelemetry import trace

        with contextlib.suppress(FlowFailure):
            revision = self.source.activity(activity.info().activity_type)
            trace.get_current_span().set_attributes({ENTRY_ATTRIBUTE: revision.entry_id,
                                                     REVISION_ATTRIBUTE: revision.digest})
        return await super().execute_activity(input)


def tracing_wanted() -> bool:
    """Whether ``flowctl run`` traces: the caller passed a trace context or configured an OTLP endpoint."""
    wanted = any(os.environ.get(name) for name in ("TRACEPARENT", "OTEL_EXPORTER_OTLP_ENDPOINT",
                                                   "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
    if not wanted:
        return False
    try:
        _require_otel()
    except FlowError:
        return False
    return True


def caller_context() -> Any:
    """The caller's trace context from ``TRACEPARENT`` / ``TRACESTATE`` (None when unset)."""
    carrier = {key.lower(): os.environ[key] for key in ("TRACEPARENT", "TRACESTATE") if os.environ.get(key)}
    if not carrier:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator().extract(carrier)


def traced_client(client: Client, interceptor: Any) -> Client:
    """``client`` with ``interceptor`` added (same connection), so its starts carry the trace context."""
    config = client.config()
    config["interceptors"] = [*config["interceptors"], interceptor]
    return Client(**config)


@contextlib.contextmanager
def client_span(name: str, attributes: dict[str, str], tracer: Tracer | None = None) -> Iterator[None]:
    """A span around a client call, child of the caller's ``TRACEPARENT`` when there is one."""
    from opentelemetry import trace

    with (tracer or trace.get_tracer("flowctl")).start_as_current_span(name, context=caller_context(),
                                                                       attributes=attributes):
        yield

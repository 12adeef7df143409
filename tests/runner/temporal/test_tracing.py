"""OpenTelemetry: a Lua workflow with an activity and a child makes one trace, every span in its place,
workflow and activity spans labelled with the flowctl entry and revision (the SDK's in-memory exporter)."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from runner.temporal import tracing
from runner.temporal.worker import serve
from tests.support.paths import REPO
from tests.support.worker import lua_worker

FLEET = REPO / "tests" / "runner" / "entries" / "fleet"


async def test_a_workflow_with_an_activity_and_a_child_is_one_trace(dev_server: Any,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    client = await dev_server.client()
    monkeypatch.setenv("TRACEPARENT", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    # the worker side and the `flowctl run` side both trace through this provider
    interceptors: list[Any] = []
    monkeypatch.setattr(tracing, "tracing_interceptor", _with_tracer(tracing.tracing_interceptor, tracer))
    monkeypatch.setattr(tracing, "client_span", _span_with(tracing.client_span, tracer))
    monkeypatch.setattr("tests.support.worker.serve", _serving_with(interceptors))
    async with lua_worker(client, FLEET) as project:
        result = await project.run("fleet:job", {"n": 7})
    assert result == {"n": 7, "child": 7, "version": "v1"}

    spans = exporter.get_finished_spans()
    by_name = {span.name: span for span in spans}
    assert {span.context.trace_id for span in spans} == {0x0AF7651916CD43DD8448EB211C80319C}, "one trace"
    start = by_name["flowctl.start:fleet:job"]
    assert start.parent is not None and start.parent.span_id == 0xB7AD6B7169203331  # the caller's span
    # temporalio's workflow spans are instants (replay-safe), children of the run's context, which is
    # its StartWorkflow span: RunWorkflow, StartActivity and StartChildWorkflow are siblings under it
    expected_parents = {
        "StartWorkflow:fleet:job": "flowctl.start:fleet:job",
        "RunWorkflow:fleet:job": "StartWorkflow:fleet:job",
        "StartActivity:fleet:step": "StartWorkflow:fleet:job",
        "RunActivity:fleet:step": "StartActivity:fleet:step",
        "StartChildWorkflow:fleet:child": "StartWorkflow:fleet:job",
        "RunWorkflow:fleet:child": "StartChildWorkflow:fleet:child",
        "CompleteWorkflow:fleet:job": "StartWorkflow:fleet:job",
    }
    for name, parent in expected_parents.items():
        assert name in by_name, sorted(by_name)
        assert by_name[name].parent is not None and by_name[name].parent.span_id == by_name[parent].context.span_id, (
            name, parent)
    job = project.source.workflow("fleet:job")
    for name in ("flowctl.start:fleet:job", "RunWorkflow:fleet:job"):
        attributes = by_name[name].attributes or {}
        assert attributes[tracing.ENTRY_ATTRIBUTE] == "fleet:job"
        assert attributes[tracing.REVISION_ATTRIBUTE] == job.digest
    activity = by_name["RunActivity:fleet:step"].attributes or {}
    assert activity[tracing.ENTRY_ATTRIBUTE] == "fleet:step"
    assert activity[tracing.REVISION_ATTRIBUTE] == project.source.activity("fleet:step").digest
    child = by_name["RunWorkflow:fleet:child"].attributes or {}
    assert child[tracing.ENTRY_ATTRIBUTE] == "fleet:child"


def test_tracing_is_wanted_only_when_the_caller_traces(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TRACEPARENT", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert not tracing.tracing_wanted() and tracing.caller_context() is None
    monkeypatch.setenv("TRACEPARENT", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    assert tracing.tracing_wanted() and tracing.caller_context() is not None


def _with_tracer(make: Any, tracer: Any) -> Any:
    def build(source: Any, _tracer: Any = None) -> Any:
        return make(source, tracer)
    return build


def _span_with(make: Any, tracer: Any) -> Any:
    def span(name: str, attributes: dict[str, str], _tracer: Any = None) -> Any:
        return make(name, attributes, tracer)
    return span


def _serving_with(interceptors: list[Any]) -> Any:
    async def serving(source: Any, *args: Any, **kwargs: Any) -> None:
        interceptors.append(tracing.tracing_interceptor(source))
        await serve(source, *args, interceptors=list(interceptors), **kwargs)
    return serving

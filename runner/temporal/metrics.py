"""Prometheus metrics (``flowctl worker --metrics-port N``): Temporal's SDK metrics plus flowctl's own.

flowctl's, emitted through Temporal's metric meters (so nothing is counted twice while a
run replays):

- ``flowctl_lua_task_cpu_seconds`` (histogram): Lua CPU time per workflow task, by entry;
- ``flowctl_sandbox_limit_hits`` (counter): runs or activity attempts stopped by a sandbox
  limit, by entry and limit.
"""

from __future__ import annotations

from collections.abc import Callable

from temporalio import activity, workflow
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

__all__ = ["limit_hit", "lua_task_cpu", "prometheus_runtime"]


def prometheus_runtime(port: int, host: str = "0.0.0.0") -> Runtime:
    """A Temporal runtime serving ``/metrics`` on ``host:port`` for every client connected with it."""
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=f"{host}:{port}")))


def lua_task_cpu(entry_id: str) -> Callable[[float], None]:
    """A recorder of Lua CPU time per workflow task for one run (built once; silent during replay)."""
    histogram = workflow.metric_meter().create_histogram_float(
        "flowctl_lua_task_cpu_seconds", "Lua CPU time per workflow task", "s"
    ).with_additional_attributes({"entry": entry_id})
    return histogram.record


def limit_hit(entry_id: str, limit: str, *, in_workflow: bool) -> None:
    """Count a run or attempt stopped by a sandbox limit."""
    meter = workflow.metric_meter() if in_workflow else activity.metric_meter()
    counter = meter.create_counter("flowctl_sandbox_limit_hits", "runs or attempts stopped by a sandbox limit")
    counter.with_additional_attributes({"entry": entry_id, "limit": limit}).add(1)

"""Prometheus metrics (``flowctl worker --metrics-port N``): Temporal's SDK metrics plus flowctl's own.

flowctl's, emitted through Temporal's metric meters (so nothing is counted twice while a
run replays):

- ``flowctl_lua_task_cpu_seconds`` (histogram): Lua CPU time per workflow task, by entry;
- ``flowctl_sandbox_limit_hits`` (counter): runs or activity attempts stopped by a sandbox
  limit, by entry and limit.

The endpoint binds 127.0.0.1 unless ``--metrics-host`` says otherwise (metrics name entries and
task queues: not for the whole network by default). The Lua CPU histogram has seconds-scale
buckets (:data:`LUA_CPU_BUCKETS`): the core's defaults (50 ... 10,000) are for milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable

from temporalio import activity, workflow
from temporalio.runtime import LoggingConfig, PrometheusConfig, Runtime, TelemetryConfig

__all__ = ["DEFAULT_METRICS_HOST", "LUA_CPU_BUCKETS", "LUA_CPU_METRIC", "limit_hit", "lua_task_cpu",
           "metrics_address", "prometheus_runtime"]

#: ``--metrics-host`` when not given: this machine only
DEFAULT_METRICS_HOST = "127.0.0.1"
LUA_CPU_METRIC = "flowctl_lua_task_cpu_seconds"
#: seconds: a workflow task's Lua takes ~0.5 ms; the instruction budget stops it after ~1-5 s
LUA_CPU_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0, 10.0)


def metrics_address(port: int, host: str = DEFAULT_METRICS_HOST) -> str:
    """``host:port`` as a socket address (an IPv6 host in brackets)."""
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def prometheus_runtime(port: int | None, host: str = DEFAULT_METRICS_HOST,
                       core_logs: LoggingConfig | None = LoggingConfig.default) -> Runtime:
    """A Temporal runtime for every client connected with it: ``/metrics`` on ``host:port`` (none when
    ``port`` is None) and the core's ``core_logs`` (runner.worker_logs.core_logging: forwarded to Python)."""
    metrics = None if port is None else PrometheusConfig(
        bind_address=metrics_address(port, host), histogram_bucket_overrides={LUA_CPU_METRIC: list(LUA_CPU_BUCKETS)})
    return Runtime(telemetry=TelemetryConfig(metrics=metrics, logging=core_logs))


def lua_task_cpu(entry_id: str) -> Callable[[float], None]:
    """A recorder of Lua CPU time per workflow task for one run (built once; silent during replay)."""
    histogram = workflow.metric_meter().create_histogram_float(
        LUA_CPU_METRIC, "Lua CPU time per workflow task", "s"
    ).with_additional_attributes({"entry": entry_id})
    return histogram.record


def limit_hit(entry_id: str, limit: str, *, in_workflow: bool) -> None:
    """Count a run or attempt stopped by a sandbox limit."""
    meter = workflow.metric_meter() if in_workflow else activity.metric_meter()
    counter = meter.create_counter("flowctl_sandbox_limit_hits", "runs or attempts stopped by a sandbox limit")
    counter.with_additional_attributes({"entry": entry_id, "limit": limit}).add(1)

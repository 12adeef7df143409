"""flowctl on Temporal: the worker, the one dynamic workflow and activity, and what crosses the wire.

``worker`` serves task queues (``worker_plan`` decides which, at start and after every apply;
``supervisor`` restarts the serving process, ``watchdog`` notices Lua calls that never return),
``workflow`` runs ``workflow.lua`` entries through the sandbox's driver, ``activities`` runs
``function.lua`` / ``function.python`` entries, ``interceptors`` carries ``ctx`` on headers,
``metrics`` exports Prometheus metrics, ``tracing`` OpenTelemetry spans, ``failures`` maps
flowctl failures to Temporal's and back, ``options`` builds start, activity and retry options,
``memo`` names the memo keys flowctl writes.

May import: temporalio, ``runner.sandbox``, ``runner.shims``, ``runner.revision_source``, ``registry``.
"""

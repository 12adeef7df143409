"""The ``ctx`` module in workflows: read-only context values given by whoever started the run.

The starter passes them in the memo ``flowctl.context`` (``flowctl run --context``;
``process.with_context`` later); they are read once at the start of the run.
"""

from __future__ import annotations

from typing import Any

from runner.sandbox.driver import Handler, Reply, read_only
from runner.shims.run_context import WorkflowRun


def handlers(run: WorkflowRun) -> dict[str, Handler]:
    """Command handlers for the ctx module."""

    @read_only
    def context_values(_cmd: Any) -> Reply:
        return (run.sandbox.import_(dict(run.context), "ctx"),)

    return {"ctx.all": context_values}

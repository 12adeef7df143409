"""``print`` and the ``log`` module in workflows: lines on the worker's log, not on replay.

Lines go to ``temporalio.workflow.logger`` (which drops them while a workflow task
replays history), tagged with the workflow id, run id, entry ID and the Lua file:line
that logged them.
"""

from __future__ import annotations

import logging
from typing import Any

from temporalio import workflow

from runner.sandbox.driver import Handler, Reply, read_only
from runner.sandbox.values import lua_field, lua_value, text
from runner.shims.run_context import WorkflowRun

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}


def handlers(run: WorkflowRun) -> dict[str, Handler]:
    """Command handlers for log/print."""

    @read_only  # a log line changes nothing the workflow sees (and is not written while replaying)
    def log(cmd: Any) -> Reply:
        level = LEVELS.get(text(cmd, "level", "log level"), logging.INFO)
        fields = lua_value(run.sandbox, lua_field(cmd, "fields", "log fields"), "log fields")
        where = text(cmd, "where", "log where", optional=True) or "?"
        message = text(cmd, "message", "log message")
        extra = {"lua_where": where, "entry_id": run.revision.entry_id}
        if fields:  # fields of the line (runner.worker_logs), not text in its message
            extra["lua_fields"] = fields
        # workflow.logger adds workflow id / run id and is silent during replay.
        workflow.logger.log(level, f"[{where}] {message}", extra=extra)
        return ()

    return {"log": log}

"""``print`` and the ``log`` module in workflows: lines on the worker's log, not on replay.

Lines go to ``temporalio.workflow.logger`` (which drops them while a workflow task
replays history), tagged with the workflow id, run id, entry ID and the Lua file:line
that logged them.
"""

from __future__ import annotations

import logging
from typing import Any

from temporalio import workflow

from runner.sandbox.driver import Handler, Reply
from runner.sandbox.values import lua_value
from runner.shims.run_context import WorkflowRun

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}


def handlers(run: WorkflowRun) -> dict[str, Handler]:
    """Command handlers for log/print."""

    def log(cmd: Any) -> Reply:
        level = LEVELS.get(str(cmd["level"]), logging.INFO)
        fields = lua_value(run.sandbox, cmd["fields"], "log fields") if cmd["fields"] is not None else None
        where = cmd["where"] or "?"
        message = str(cmd["message"])
        extra = {"lua_where": where, "entry_id": run.revision.entry_id}
        if fields:
            extra["lua_fields"] = fields
            message = f"{message} {fields}"
        # workflow.logger adds workflow id / run id and is silent during replay.
        workflow.logger.log(level, f"[{where}] {message}", extra=extra)
        return ()

    return {"log": log}

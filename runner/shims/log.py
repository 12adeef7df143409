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

#: ``where`` is a trusted helper from the shim loader (debug.getinfo), never visible to user code.
LUA_SOURCE = r"""
local yield_command, where, tostring_ = ...
local M = {}

local function emit(level, message, fields)
    local ok, err = yield_command({op = "log", level = level, message = message, fields = fields,
                                   where = where(3)})
    if not ok then error(err, 3) end
end

for _, level in ipairs({"debug", "info", "warn", "error"}) do
    M[level] = function(message, fields)
        if fields ~= nil and type(fields) ~= "table" then
            error("log." .. level .. ": fields must be a table", 2)
        end
        emit(level, tostring_(message), fields)
    end
end

-- print(...) is log.info of its arguments joined by tabs, like Lua's own print
local function print_(...)
    local parts = table.pack(...)
    for i = 1, parts.n do parts[i] = tostring_(parts[i]) end
    emit("info", table.concat(parts, "\t", 1, parts.n))
end

return M, print_
"""


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

"""The ``ctx`` module in workflows: read-only context values given by whoever started the run.

The starter passes them in the memo ``flowctl.context`` (``flowctl run --context``;
``process.with_context`` later); they are read once at the start of the run.
"""

from __future__ import annotations

from typing import Any

from runner.sandbox.driver import Handler, Reply
from runner.shims.run_context import WorkflowRun

LUA_SOURCE = r"""
local yield_command = ...
local M = {}
local cache

local function all()
    if cache == nil then
        local ok, values = yield_command({op = "ctx.all"})
        if not ok then error(values, 3) end
        cache = values
    end
    return cache
end

function M.get(key)
    return all()[key]
end

function M.all()
    local copy = {}
    for k, v in pairs(all()) do copy[k] = v end
    return copy
end

return M
"""


def handlers(run: WorkflowRun) -> dict[str, Handler]:
    """Command handlers for the ctx module."""

    def context_values(_cmd: Any) -> Reply:
        return (run.sandbox.import_(dict(run.context), "ctx"),)

    return {"ctx.all": context_values}

"""The ``uuid`` module in workflows: UUIDs from the workflow's deterministic random source.

A replay draws the same numbers in the same order, so it gets the same UUIDs.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

from runner.sandbox.driver import Handler, Reply


def handlers(_run: object) -> dict[str, Handler]:
    """Command handlers for the uuid module."""

    def v4(_cmd: Any) -> Reply:
        return (str(workflow.uuid4()),)

    def v7(_cmd: Any) -> Reply:
        return (str(workflow.uuid7()),)

    return {"uuid.v4": v4, "uuid.v7": v7}

"""What every workflow shim handler may use: the run's sandbox, driver, revision and registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from registry.revision import Revision

if TYPE_CHECKING:
    from runner.revision_source import RevisionSource
    from runner.sandbox.driver import WorkflowDriver


@dataclass
class WorkflowRun:
    """One workflow run as the shims see it (lives as long as the run is cached by the worker)."""

    sandbox: Any
    driver: WorkflowDriver
    revision: Revision
    source: RevisionSource
    #: ``workflow.version`` answers, so one change id gets one answer for the whole run
    versions: dict[str, int] = field(default_factory=dict)
    #: context values from the starter (``ctx.get`` / ``ctx.all``)
    context: dict[str, Any] = field(default_factory=dict)
    #: the run's mailbox, children, monitors and links (runner.shims.process.ProcessState)
    process: Any = None
    #: ``workflow.on_query`` / ``workflow.on_update`` handlers: name -> Lua function(s)
    queries: dict[str, Any] = field(default_factory=dict)
    updates: dict[str, tuple[Any, Any]] = field(default_factory=dict)

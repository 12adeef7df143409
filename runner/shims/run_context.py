"""What every workflow shim handler may use: the run's sandbox, driver, revision and registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from registry.revision import Revision

if TYPE_CHECKING:
    from runner.driver import WorkflowDriver
    from runner.revisions import RevisionSource


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

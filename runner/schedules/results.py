"""What ``flowctl schedule list|describe|trigger|pause|unpause|backfill`` return (``runner/schedules/operate.py``).

Plain dataclasses with ``to_dict()``, no temporalio: ``runner.render`` prints them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ListedSchedule", "RecentAction", "ScheduleDetails", "ScheduleList", "ScheduleOperation"]


@dataclass(frozen=True)
class ListedSchedule:
    """One schedule as ``flowctl schedule list`` shows it."""

    schedule_id: str
    entry_id: str | None
    client_id: str
    workflow_type: str
    paused: bool
    note: str
    next_time: str | None
    #: the schedule entry revision the cluster has (its runs' memo) and the registry's current one
    applied_revision: str | None
    current_revision: str | None
    #: the registry has the entry, the cluster no schedule: apply has not run since (or failed)
    missing: bool = False

    @property
    def orphaned(self) -> bool:
        """flowctl created it for an entry the registry no longer has (pruned while the cluster was unreachable)."""
        return not self.missing and self.current_revision is None

    @property
    def behind(self) -> bool:
        """The cluster has another revision of the entry than the registry: apply again."""
        return self.current_revision is not None and self.applied_revision != self.current_revision

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.schedule_id, "entry": self.entry_id, "client": self.client_id,
                "workflow_type": self.workflow_type, "paused": self.paused, "note": self.note,
                "next_time": self.next_time, "applied_revision": self.applied_revision,
                "current_revision": self.current_revision, "missing": self.missing, "behind": self.behind,
                "orphaned": self.orphaned}


@dataclass(frozen=True)
class ScheduleList:
    """``flowctl schedule list``: flowctl's schedules on the clients asked, and entries with none."""

    schedules: tuple[ListedSchedule, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"schedules": [s.to_dict() for s in self.schedules]}


@dataclass(frozen=True)
class RecentAction:
    """A run the schedule started: when, which, and how it is doing."""

    scheduled_at: str
    started_at: str
    workflow_id: str
    run_id: str
    #: Temporal's status in lower case (``gone``: deleted by retention)
    status: str
    result: Any = None
    failure: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ScheduleDetails:
    """``flowctl schedule describe``: what the schedule does, when next, and its recent runs."""

    schedule_id: str
    entry_id: str | None
    client_id: str
    paused: bool
    note: str
    workflow_type: str
    task_queue: str
    workflow_id: str
    spec: tuple[str, ...]
    overlap: str
    catchup_window: str | None
    pause_on_failure: bool
    actions: int
    skipped_overlap: int
    missed_catchup: int
    next_times: tuple[str, ...]
    recent: tuple[RecentAction, ...]
    applied_revision: str | None
    current_revision: str | None
    created_at: str | None = None
    updated_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        body = {k: v for k, v in self.__dict__.items() if k != "recent"}
        return {**body, "spec": list(self.spec), "next_times": list(self.next_times),
                "recent": [r.to_dict() for r in self.recent]}


@dataclass(frozen=True)
class ScheduleOperation:
    """What ``trigger``, ``pause``, ``unpause`` or ``backfill`` did."""

    action: str
    schedule_id: str
    entry_id: str | None
    client_id: str
    #: the pause note, or the backfill window and overlap policy
    detail: str = ""
    #: ``trigger``: the run it started, when seen within a few seconds
    workflow_id: str | None = None
    run_id: str | None = None
    paused: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, **self.__dict__}

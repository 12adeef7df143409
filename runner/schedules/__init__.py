"""Schedules on the cluster, runner half: ``temporal.schedule`` entries as Temporal Schedules.

``spec.py`` turns the registry's plain description of a schedule (``registry.schedules``) into
temporalio's objects; ``reconcile.py`` compares the entries with the cluster and creates, updates
or deletes schedules (``flowctl diff`` / ``apply`` / ``dev``); ``operate.py`` is ``flowctl schedule
list|describe|trigger|pause|unpause|backfill``.

This module stays light (no temporalio import): ``cli.py`` hands :class:`ScheduleReconciler` to the
registry's diff and apply, and temporalio is imported only when a tree has schedules.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from registry.schedules import ScheduleReport, ScheduleRequest

__all__ = ["ScheduleReconciler"]


@dataclass(frozen=True)
class ScheduleReconciler:
    """The registry's ``ScheduleSync`` callback: plans (describe only) or applies a request on the cluster."""

    def __call__(self, request: ScheduleRequest, *, apply: bool) -> ScheduleReport:
        from runner.schedules.reconcile import reconcile

        return asyncio.run(reconcile(request, apply=apply))

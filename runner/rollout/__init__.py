"""Rolling a change out to live runs: the replay gate of ``flowctl apply`` / ``flowctl diff`` (``gate.py``).

This module stays light (no temporalio import): ``cli.py`` hands :class:`ReplayGate` to the
registry's apply and diff, and temporalio is imported only when a plan needs the gate.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from registry.gate import GateRequest, GateVerdict

__all__ = ["DEFAULT_GATE_LIMIT", "ReplayGate"]

#: ``--gate-limit``: open runs replayed at most, newest first.
DEFAULT_GATE_LIMIT = 100


@dataclass(frozen=True)
class ReplayGate:
    """The registry's ``Gate`` callback: replays the targets' runs on the new revisions (runner/rollout/gate.py)."""

    #: open runs replayed at most, newest first, over every target
    limit: int = DEFAULT_GATE_LIMIT

    def __call__(self, request: GateRequest) -> GateVerdict:
        from runner.rollout.gate import check_runs, quiet_replay_warnings

        quiet_replay_warnings()
        return asyncio.run(check_runs(request, limit=self.limit))

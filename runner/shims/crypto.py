"""The ``crypto`` module in workflows: random bytes from the workflow's deterministic random source.

Good for ids and nonces that must be the same on replay; not for secrets (the seed is
in the workflow history). Generate secrets in an activity.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

from runner.sandbox.driver import Handler, Reply, ShimError
from runner.sandbox.values import integer

#: Larger requests belong in an activity (and would bloat the Lua heap of a cached run).
MAX_RANDOM_BYTES = 1 << 20


def handlers(_run: object) -> dict[str, Handler]:
    """Command handlers for the crypto module."""

    def random_bytes(cmd: Any) -> Reply:
        n = integer(cmd, "n", "crypto.random_bytes: n")
        if n < 0 or n > MAX_RANDOM_BYTES:
            raise ShimError(f"crypto.random_bytes: n must be between 0 and {MAX_RANDOM_BYTES}")
        return (workflow.random().randbytes(n),)

    return {"crypto.random_bytes": random_bytes}

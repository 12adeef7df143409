"""``err:retryable()`` of an activity's error says what Temporal did: false for kinds its retry policy never retries."""

from __future__ import annotations

from typing import Any

from tests.support.paths import REPO
from tests.support.worker import lua_worker

ENTRIES = REPO / "tests" / "runner" / "entries" / "d_retryable"


async def test_a_kind_listed_in_non_retryable_error_kinds_is_not_retryable(dev_server: Any) -> None:
    async with lua_worker(await dev_server.client(), ENTRIES) as project:
        # DECLINED is in the entry's non_retryable_error_kinds: one attempt, and Lua is told so
        assert await project.run("app:caller", {"kind": "DECLINED"}) == {"kind": "DECLINED", "retryable": False}
        # a kind the policy retries, failing on every attempt: still retryable when the attempts run out
        got = await project.run("app:caller", {"kind": "BUSY"})
        assert got == {"kind": "BUSY", "retryable": True}
        # an error its thrower marks non-retryable stays so
        got = await project.run("app:caller", {"kind": "BUSY", "retryable": False})
        assert got == {"kind": "BUSY", "retryable": False}

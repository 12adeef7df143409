"""Pinning (docs/operations.md): a run keeps the revision it started on; `versioning: auto_upgrade` moves it on."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.histories import with_source
from tests.support.paths import ENTRIES
from tests.support.worker import lua_worker


@pytest.mark.parametrize(("versioning", "expected"), [("pinned", "hello from A"), ("auto_upgrade", "hello from B")])
async def test_a_new_apply_reaches_running_workflows_only_with_auto_upgrade(
        dev_server: Any, versioning: str, expected: str) -> None:
    async with lua_worker(await dev_server.client(), ENTRIES / "pinning", versioning=versioning) as project:
        handle = await project.start("app:greeter", {"wait": "2s"})
        # let the first workflow task run on revision A (it starts the timer), then apply revision B
        await asyncio.sleep(0.8)
        old = project.source.workflow("app:greeter")
        project.source.add(with_source(old, old.source.replace("hello from A", "hello from B")))
        assert project.source.workflow("app:greeter").digest != old.digest
        result = await handle.result()
        described = await handle.describe()
    assert result == {"greeting": expected}
    memo = await described.memo()
    if versioning == "pinned":
        assert memo["flowctl.revision"] == old.digest, "the run records the revision it runs"

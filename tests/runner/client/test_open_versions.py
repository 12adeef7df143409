"""`flowctl versions`: open runs by pinned revision and by recorded workflow.version."""

from __future__ import annotations

from typing import Any

from runner.client.open_versions import open_versions
from tests.support.paths import ENTRIES
from tests.support.worker import lua_worker


async def test_open_runs_are_counted_by_revision_and_recorded_version(dev_server: Any) -> None:
    client = await dev_server.client()
    async with lua_worker(client, ENTRIES / "pinning") as project:
        handles = [await project.start("app:versioned") for _ in range(2)]
        revision = project.source.workflow("app:versioned")
        # both runs took their branch (their first task) before we look
        for handle in handles:
            await handle.query("__stack_trace")
        found = await open_versions(client, revision)
        for handle in handles:
            await handle.signal("done", None)
        results = [await handle.result() for handle in handles]
    assert results == [{"version": 2}, {"version": 2}]
    assert found.runs >= 2
    assert found.revisions[revision.digest] >= 2
    assert found.versions["greeting-v2"][2] >= 2
    assert found.to_dict()["versions"]["greeting-v2"]["2"] >= 2

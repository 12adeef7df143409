"""The replay gate's runner half on the real dev server: open runs served by a real auto_upgrade worker,
replayed on a change before it is applied. (runner/rollout/gate.py)"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle

from registry.gate import GateRequest, GateTarget, GateVerdict
from registry.revision import Revision
from runner.dev.server import free_port
from runner.revision_source import ProjectRevisionSource
from runner.rollout.gate import check_runs
from tests.runner.rollout import apply_change, gate_project, listed, restore, waiting
from tests.support.worker import LuaProject, lua_worker


@dataclasses.dataclass
class Served:
    """The gate's project served by an auto_upgrade worker, with one open run of each waiting workflow."""

    project: LuaProject
    entries: Path
    ns: str
    order: WorkflowHandle[Any, Any]
    versioned: WorkflowHandle[Any, Any]

    @property
    def current(self) -> dict[str, Revision]:
        return {rev.entry_id: rev for rev in self.project.source.entries()}

    def request(self, change: str, target: str, *, current: Mapping[str, Revision] | None = None,
                upgrading_now: bool = True) -> GateRequest:
        """The gate's request for applying ``changes/<change>.lua`` as ``<target>.lua``."""
        apply_change(self.entries, change, target)
        try:
            changed = ProjectRevisionSource.from_paths([self.entries]).workflow(f"{self.ns}:{target}")
        finally:
            restore(self.entries, target)
        before = dict(current or self.current)
        entry_id = f"{self.ns}:{target}"
        gate_target = GateTarget(entry_id, (entry_id,), f"{self.ns}:worker", f"{self.ns}:client", "changed",
                                 upgrading_now=upgrading_now)
        return GateRequest((gate_target,), before, {**before, entry_id: changed})

    async def check(self, request: GateRequest, **options: Any) -> GateVerdict:
        return await check_runs(request, clients={f"{self.ns}:client": self.project.client}, **options)


async def start_order(served: Served, amount: int = 5) -> WorkflowHandle[Any, Any]:
    handle = await served.project.start(f"{served.ns}:order", {"amount": amount})
    await waiting(handle, "activity_task_completed_event_attributes")
    return handle


@pytest.fixture(scope="module")
async def served(dev_server: Any, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    entries, ns = gate_project(tmp_path_factory.mktemp("gate"))
    client = await dev_server.client()
    async with lua_worker(client, entries, versioning="auto_upgrade") as project:
        order = await project.start(f"{ns}:order", {"amount": 5})
        versioned = await project.start(f"{ns}:versioned")
        await waiting(order, "activity_task_completed_event_attributes")
        await waiting(versioned, "marker_recorded_event_attributes")
        await listed(client, f"{ns}:order", {order.result_run_id or ""})
        await listed(client, f"{ns}:versioned", {versioned.result_run_id or ""})
        served = Served(project, entries, ns, order, versioned)
        try:
            yield served
        finally:
            async for execution in client.list_workflows(f"ExecutionStatus = 'Running' AND TaskQueue = "
                                                         f"'{project.task_queue}'"):
                await client.get_workflow_handle(execution.id, run_id=execution.run_id).terminate("test over")


@pytest.mark.parametrize(("change", "target", "event", "issued", "where"), [
    ("order_swapped", "order", "activity NS:charge", "activity NS:refund", "order.lua:3"),
    ("order_timer", "order", "activity NS:charge", "timer 1s", "order.lua:3"),
])
async def test_a_breaking_change_names_the_run_the_event_the_lua_line_and_the_version_call(
        served: Served, change: str, target: str, event: str, issued: str, where: str) -> None:
    request = served.request(change, target)
    verdict = await served.check(request)
    assert not verdict.ok
    mine = next(d for d in verdict.blocking if d.run_id == served.order.result_run_id)
    assert (mine.workflow_id, mine.open, mine.status) == (served.order.id, True, "diverged")
    assert (mine.history_command, mine.new_command, mine.where) == (
        event.replace("NS", served.ns), issued.replace("NS", served.ns), where)
    old_digest = served.current[f"{served.ns}:order"].digest
    assert mine.fix.splitlines() == [
        f'if workflow.version("order-{old_digest[:8]}", 1, 2) == 1 then',
        f"    -- the old code (it issued `{mine.history_command}`, history event {mine.event_id})",
        "else",
        f"    -- the new code (it issues `{mine.new_command}`)",
        "end"]
    assert mine.fix_hint.startswith(f"at {where}: runs that recorded the old commands take branch 1, new runs branch 2")
    [runs] = verdict.workflows
    assert runs.open_runs >= 1 and runs.target.entry_id == f"{served.ns}:order"


async def test_removing_a_recorded_workflow_version_says_to_keep_the_call(served: Served) -> None:
    verdict = await served.check(served.request("versioned_removed", "versioned"))
    [mine] = [d for d in verdict.blocking if d.run_id == served.versioned.result_run_id]
    assert mine.history_command == "marker ship-v2@v2 (workflow.version)" and mine.new_command is None
    assert mine.fix == 'workflow.version("ship-v2", 1, 2)'
    assert mine.fix_hint.startswith("keep this call where the registry's revision has it (versioned.lua:3): "
                                    "this run recorded version 2 of 'ship-v2'")


async def test_a_recorded_version_the_registry_has_no_call_for_still_gets_a_call_that_replays_it(
        served: Served) -> None:
    removed = served.request("versioned_removed", "versioned").after  # e.g. applied with --no-gate
    verdict = await served.check(served.request("versioned_removed", "versioned", current=removed,
                                                upgrading_now=False))
    [mine] = [d for d in verdict.blocking if d.run_id == served.versioned.result_run_id]
    assert mine.fix == 'workflow.version("ship-v2", 1, 2)', "min below the recorded 2, so its marker is looked for"
    assert mine.fix_hint.startswith("keep a call to it where the old code had it: this run recorded version 2")


async def test_the_change_guarded_by_workflow_version_passes(served: Served) -> None:
    verdict = await served.check(served.request("order_wrapped", "order"))
    assert verdict.ok and verdict.divergences == (), verdict.divergences
    assert verdict.workflows[0].open_runs >= 1 and verdict.seconds > 0
    assert verdict.note().startswith(f"replay gate: {verdict.runs} run")


async def test_recently_closed_runs_are_replayed_too(served: Served) -> None:
    handle = await start_order(served, amount=9)
    await handle.signal("ship", None)
    assert (await handle.result())["receipt"] == "charged 9"
    await listed(served.project.client, f"{served.ns}:order", {handle.result_run_id or ""})
    request = served.request("order_swapped", "order")
    verdict = await served.check(request)
    closed = [d for d in verdict.divergences if d.run_id == handle.result_run_id]
    assert [d.open for d in closed] == [False] and verdict.workflows[0].closed_runs >= 1
    without = await served.check(request, closed=0)
    assert without.workflows[0].closed_runs == 0
    assert handle.result_run_id not in {d.run_id for d in without.divergences}


async def test_the_limit_keeps_the_newest_open_runs(served: Served) -> None:
    newest = [await start_order(served, amount) for amount in (1, 2)]
    await listed(served.project.client, f"{served.ns}:order", {h.result_run_id or "" for h in newest})
    verdict = await served.check(served.request("order_swapped", "order"), limit=2, closed=0)
    assert verdict.workflows[0].open_runs == 2
    assert {d.run_id for d in verdict.divergences} == {h.result_run_id for h in newest}


async def test_a_run_that_fails_on_the_current_revision_too_is_not_this_applys_doing(served: Served) -> None:
    # as if the swap had been applied with --no-gate: the open run is stuck on it already
    stuck = served.request("order_swapped", "order").after
    verdict = await served.check(served.request("order_timer", "order", current=stuck))
    mine = next(d for d in verdict.divergences if d.run_id == served.order.result_run_id)
    assert mine.already_failing and mine not in verdict.blocking
    pinned_today = await served.check(served.request("order_timer", "order", current=stuck, upgrading_now=False))
    assert not pinned_today.ok, "runs a worker turning auto_upgrade moves were not stuck before this apply"


async def test_an_unreachable_server_is_an_error_naming_the_client_and_its_address(tmp_path: Path) -> None:
    entries, ns = gate_project(tmp_path)
    revisions = {rev.entry_id: rev for rev in ProjectRevisionSource.from_paths([entries]).entries()}
    port = free_port()
    client = revisions[f"{ns}:client"]
    revisions[client.entry_id] = dataclasses.replace(client, data={**client.data, "address": f"127.0.0.1:{port}"})
    target = GateTarget(f"{ns}:order", (f"{ns}:order",), f"{ns}:worker", f"{ns}:client", "changed")
    verdict = await check_runs(GateRequest((target,), revisions, revisions))
    assert not verdict.ok and verdict.runs == 0
    assert verdict.error.startswith(f"the replay gate cannot check the runs of {ns}:order: {ns}:client: cannot "
                                    f"connect to Temporal at 127.0.0.1:{port}")
    assert "--no-gate --reason TEXT" in verdict.hint

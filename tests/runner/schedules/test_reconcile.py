"""`flowctl apply` / `diff` reconciling schedule entries with the real dev server, in this process.

The callback is the real reconciler on a client of the session's server; a client interceptor counts
the calls that change a schedule (and, in one test, fails one of them). The schedules here never fire
(a cron of New Year's midnight): no worker is needed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from temporalio.client import (
    BackfillScheduleInput,
    Client,
    CreateScheduleInput,
    DeleteScheduleInput,
    Interceptor,
    OutboundInterceptor,
    PauseScheduleInput,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleDescription,
    ScheduleHandle,
    ScheduleSpec,
    TriggerScheduleInput,
    UnpauseScheduleInput,
    UpdateScheduleInput,
)
from temporalio.service import RPCError, RPCStatusCode

from registry.errors import ExitCode
from registry.publish import ApplyOutcome, diff_registry, publish_tree
from registry.render import applied, diffed
from registry.schedules import SCHEDULE_MEMO, ScheduleReport, ScheduleRequest
from runner.schedules import ScheduleReconciler
from runner.schedules.reconcile import reconcile
from tests.runner.schedules import schedule_project, set_schedules
from tests.support.servers import DevServerHandle


def yearly(name: str, extra: str = "") -> str:
    """A schedule entry that never fires during a test: New Year's midnight."""
    return f"  - name: {name}\n    kind: temporal.schedule\n    workflow: report\n    input: {{n: 1}}\n" \
           f"    cron: \"0 0 1 1 *\"\n{extra}"


class ChangingCalls(Interceptor):
    """Records the calls that change a schedule; ``fail_at``: the n-th of them (1-based) fails as UNAVAILABLE."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.fail_at = fail_at

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _Recording(next, self)

    def record(self, call: str, schedule_id: str) -> None:
        self.calls.append((call, schedule_id))
        if len(self.calls) == self.fail_at:
            raise RPCError("injected: the cluster went away", RPCStatusCode.UNAVAILABLE, b"")


class _Recording(OutboundInterceptor):
    def __init__(self, next: OutboundInterceptor, root: ChangingCalls) -> None:
        super().__init__(next)
        self.root = root

    async def create_schedule(self, input: CreateScheduleInput) -> ScheduleHandle:
        self.root.record("create", input.id)
        return await super().create_schedule(input)

    async def update_schedule(self, input: UpdateScheduleInput) -> None:
        self.root.record("update", input.id)
        await super().update_schedule(input)

    async def delete_schedule(self, input: DeleteScheduleInput) -> None:
        self.root.record("delete", input.id)
        await super().delete_schedule(input)

    async def pause_schedule(self, input: PauseScheduleInput) -> None:
        self.root.record("pause", input.id)
        await super().pause_schedule(input)

    async def unpause_schedule(self, input: UnpauseScheduleInput) -> None:
        self.root.record("unpause", input.id)
        await super().unpause_schedule(input)

    async def trigger_schedule(self, input: TriggerScheduleInput) -> None:
        self.root.record("trigger", input.id)
        await super().trigger_schedule(input)

    async def backfill_schedule(self, input: BackfillScheduleInput) -> None:
        self.root.record("backfill", input.id)
        await super().backfill_schedule(input)


class Reconciler:
    """The registry's callback: the real reconciler, on a client of the dev server with ``interceptor``."""

    def __init__(self, server: DevServerHandle, interceptor: ChangingCalls | None = None) -> None:
        self.server = server
        self.interceptor = interceptor or ChangingCalls()

    def __call__(self, request: ScheduleRequest, *, apply: bool) -> ScheduleReport:
        async def run() -> ScheduleReport:
            client = await self.connect()
            return await reconcile(request, apply=apply, clients={c: client for c in request.clients})

        return asyncio.run(run())

    async def connect(self) -> Client:
        return await Client.connect(self.server.address, namespace=self.server.namespace,
                                    interceptors=[self.interceptor])

    def on_cluster(self, call: Callable[[Client], Awaitable[Any]]) -> Any:
        async def run() -> Any:
            return await call(await Client.connect(self.server.address, namespace=self.server.namespace))

        return asyncio.run(run())

    def describe(self, schedule_id: str) -> ScheduleDescription | None:
        async def describe(client: Client) -> ScheduleDescription | None:
            try:
                return await client.get_schedule_handle(schedule_id).describe()
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND:
                    return None
                raise

        result: ScheduleDescription | None = self.on_cluster(describe)
        return result

    def delete(self, *schedule_ids: str) -> None:
        async def delete(client: Client) -> None:
            for schedule_id in schedule_ids:
                await client.get_schedule_handle(schedule_id).delete()

        self.on_cluster(delete)


def lines(outcome: ApplyOutcome) -> list[str]:
    return "".join(out.text for out in applied(outcome, as_json=False)).splitlines()


def actions(outcome: ApplyOutcome) -> list[tuple[str, str, str]]:
    assert outcome.schedules is not None
    return [(c.schedule_id, str(c.action), c.status) for c in outcome.schedules.changes]


def test_apply_creates_then_an_unchanged_tree_makes_no_changing_call(tmp_path: Path, dev_server: Any) -> None:
    entries, ns = schedule_project(tmp_path, yearly("nightly"))
    registry = str(tmp_path / "registry.db")
    sync = Reconciler(dev_server)
    first = publish_tree([entries], registry, schedules=sync)
    assert first.ok and actions(first) == [(f"{ns}:nightly", "create", "done")]
    assert f"schedule {ns}:nightly (on {ns}:client) created" in lines(first)
    described = sync.describe(f"{ns}:nightly")
    assert described is not None and sync.on_cluster(lambda c: described.memo()) == {
        SCHEDULE_MEMO: {"entry": f"{ns}:nightly"}}, "marked as flowctl's"
    assert isinstance(described.schedule.action, ScheduleActionStartWorkflow)
    assert (described.schedule.action.workflow, described.schedule.action.task_queue) == (f"{ns}:report",
                                                                                          f"{ns}-queue")
    updated_at = described.info.last_updated_at
    assert sync.interceptor.calls == [("create", f"{ns}:nightly")]

    counting = Reconciler(dev_server, ChangingCalls())
    diff = diff_registry([entries], registry, schedules=counting)
    assert diff.exit_code is ExitCode.OK and diff.schedules is not None
    assert [(c.schedule_id, str(c.action)) for c in diff.schedules.changes] == [(f"{ns}:nightly", "unchanged")]
    again = publish_tree([entries], registry, schedules=counting)
    assert again.ok and again.event is None and actions(again) == [(f"{ns}:nightly", "unchanged", "done")]
    assert counting.interceptor.calls == [], "an unchanged tree makes no call that changes a schedule"
    after = sync.describe(f"{ns}:nightly")
    assert after is not None and after.info.last_updated_at == updated_at
    sync.delete(f"{ns}:nightly")


def test_only_changed_parts_are_updated_and_an_operators_pause_is_kept(tmp_path: Path, dev_server: Any) -> None:
    entries, ns = schedule_project(tmp_path, yearly("nightly"))
    registry = str(tmp_path / "registry.db")
    sync = Reconciler(dev_server)
    assert publish_tree([entries], registry, schedules=sync).ok
    sync.on_cluster(lambda c: c.get_schedule_handle(f"{ns}:nightly").pause(note="db maintenance"))

    set_schedules(entries, ns, yearly("nightly").replace('"0 0 1 1 *"', '"0 0 1 7 *"'))
    moved = publish_tree([entries], registry, schedules=sync)
    assert moved.ok and actions(moved) == [(f"{ns}:nightly", "update", "done")]
    assert moved.schedules is not None and moved.schedules.changes[0].parts == ("spec",)
    assert f"schedule {ns}:nightly (on {ns}:client) updated (spec) (paused on the cluster: 'db maintenance'; kept " \
           "until the entry's `paused` or `note` changes)" in lines(moved)
    live = sync.describe(f"{ns}:nightly")
    assert live is not None and live.schedule.state.paused and live.schedule.state.note == "db maintenance"
    assert live.schedule.spec.calendars[0].month[0].start == 7

    set_schedules(entries, ns, yearly("nightly", '    note: back to normal\n').replace('"0 0 1 1 *"', '"0 0 1 7 *"'))
    noted = publish_tree([entries], registry, schedules=sync)
    assert noted.schedules is not None and noted.schedules.changes[0].parts == ("state",)
    live = sync.describe(f"{ns}:nightly")
    assert live is not None and not live.schedule.state.paused and live.schedule.state.note == "back to normal"
    assert [call for call, _ in sync.interceptor.calls] == ["create", "update", "update"]
    sync.delete(f"{ns}:nightly")


def test_schedules_flowctl_did_not_create_are_left_alone(tmp_path: Path, dev_server: Any) -> None:
    entries, ns = schedule_project(tmp_path, yearly("nightly") + yearly("hourly"))
    registry = str(tmp_path / "registry.db")
    sync = Reconciler(dev_server)
    foreign = Schedule(action=ScheduleActionStartWorkflow("SomeoneElses", id="theirs", task_queue="theirs"),
                       spec=ScheduleSpec(cron_expressions=["0 0 1 1 *"]))

    async def create_theirs(client: Client) -> None:
        for schedule_id in (f"{ns}:nightly", f"{ns}:theirs"):
            await client.create_schedule(schedule_id, foreign)

    sync.on_cluster(create_theirs)
    outcome = publish_tree([entries], registry, schedules=sync, prune=True)
    assert not outcome.ok and outcome.event is not None, "the registry write stands"
    assert actions(outcome) == [(f"{ns}:hourly", "create", "done"), (f"{ns}:nightly", "conflict", "failed")]
    assert f"schedule {ns}:nightly (on {ns}:client) conflict: a schedule {ns}:nightly exists and was not created " \
           "by flowctl: left alone (give the entry another `schedule_id`)" in lines(outcome)
    for schedule_id in (f"{ns}:nightly", f"{ns}:theirs"):  # neither updated nor pruned
        theirs = sync.describe(schedule_id)
        assert theirs is not None and isinstance(theirs.schedule.action, ScheduleActionStartWorkflow)
        assert theirs.schedule.action.workflow == "SomeoneElses"
    sync.delete(f"{ns}:nightly", f"{ns}:theirs", f"{ns}:hourly")


def test_a_new_schedule_id_replaces_the_old_schedule(tmp_path: Path, dev_server: Any) -> None:
    entries, ns = schedule_project(tmp_path, yearly("nightly"))
    registry = str(tmp_path / "registry.db")
    sync = Reconciler(dev_server)
    assert publish_tree([entries], registry, schedules=sync).ok
    set_schedules(entries, ns, yearly("nightly", f"    schedule_id: {ns}-nightly\n"))
    listed = _wait_listed(sync, f"{ns}:nightly")
    assert listed, "the dev server lists the first schedule"
    moved = publish_tree([entries], registry, schedules=sync)
    assert moved.ok and actions(moved) == [(f"{ns}-nightly", "create", "done"), (f"{ns}:nightly", "delete", "done")]
    assert moved.schedules is not None
    assert moved.schedules.changes[1].note == f"its entry's schedule is {ns}-nightly now"
    assert sync.describe(f"{ns}:nightly") is None and sync.describe(f"{ns}-nightly") is not None
    sync.delete(f"{ns}-nightly")


def _wait_listed(sync: Reconciler, schedule_id: str, timeout: float = 20.0) -> bool:
    """Visibility is eventually consistent: wait until the list shows ``schedule_id``."""
    async def wait(client: Client) -> bool:
        async with asyncio.timeout(timeout):
            while schedule_id not in {s.id async for s in await client.list_schedules()}:
                await asyncio.sleep(0.2)
        return True

    result: bool = sync.on_cluster(wait)
    return result


def test_a_cluster_failure_midway_is_reported_and_a_reapply_converges(tmp_path: Path, dev_server: Any) -> None:
    entries, ns = schedule_project(tmp_path, yearly("a") + yearly("b") + yearly("c"))
    registry = str(tmp_path / "registry.db")
    failing = Reconciler(dev_server, ChangingCalls(fail_at=2))
    broken = publish_tree([entries], registry, schedules=failing)
    assert not broken.ok and broken.event is not None
    assert actions(broken) == [(f"{ns}:a", "create", "done"), (f"{ns}:b", "create", "failed"),
                               (f"{ns}:c", "create", "skipped")]
    text = lines(broken)
    assert f"schedule {ns}:b (on {ns}:client) failed to create: UNAVAILABLE: injected: the cluster went away" in text
    assert f"schedule {ns}:c (on {ns}:client) not created: an earlier schedule call failed" in text
    assert f"error: not every schedule was reconciled (changed: {ns}:a)" in text
    assert [sync_id for sync_id in (f"{ns}:a", f"{ns}:b", f"{ns}:c") if failing.describe(sync_id)] == [f"{ns}:a"]

    healed = publish_tree([entries], registry, schedules=Reconciler(dev_server))
    assert healed.ok and healed.event is None, "the registry had it all already"
    assert actions(healed) == [(f"{ns}:a", "unchanged", "done"), (f"{ns}:b", "create", "done"),
                               (f"{ns}:c", "create", "done")]
    converged = Reconciler(dev_server)
    assert actions(publish_tree([entries], registry, schedules=converged)) == [
        (f"{ns}:{name}", "unchanged", "done") for name in "abc"]
    assert converged.interceptor.calls == []
    failing.delete(*(f"{ns}:{name}" for name in "abc"))


def test_an_unreachable_cluster_leaves_the_registry_written_and_says_so(tmp_path: Path) -> None:
    entries, ns = schedule_project(tmp_path, yearly("nightly"))
    (entries / "app.yaml").write_text((entries / "app.yaml").read_text().replace(
        "${env:TEMPORAL_ADDRESS:-localhost:7233}", "127.0.0.1:1"))
    diff = diff_registry([entries], str(tmp_path / "registry.db"), schedules=ScheduleReconciler())
    assert diff.exit_code is ExitCode.USAGE
    text = "".join(out.text for out in diffed(diff, as_json=False))
    assert f"+ {ns}:nightly (on {ns}:client) create (the cluster was not asked)" in text, "what the registry tells"
    assert "schedules: " in text and "cannot connect to Temporal at 127.0.0.1:1" in text
    outcome = publish_tree([entries], str(tmp_path / "registry.db"), schedules=ScheduleReconciler())
    assert not outcome.ok and outcome.event is not None
    assert outcome.schedules is not None and "cannot connect to Temporal at 127.0.0.1:1" in outcome.schedules.error
    out = applied(outcome, as_json=False)
    assert any(o.err and "the registry was written, the schedules were not reconciled" in o.text for o in out)

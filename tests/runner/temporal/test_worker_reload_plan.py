"""The reload planning of a running worker, without a server: served specs + registry → what changes."""

from __future__ import annotations

from typing import Any

from registry.revision import Revision
from runner.temporal.worker_plan import WorkerSpec, connection_fields, plan_reload, select_workers


def worker(name: str, **data: Any) -> Revision:
    return Revision(f"app:{name}", "temporal.worker", f"digest-{name}-{sorted(data.items())}",
                    {"name": name, "kind": "temporal.worker", "client": "client", **data}, None, None)


def client(name: str = "client", **data: Any) -> Revision:
    return Revision(f"app:{name}", "temporal.client", f"digest-{name}-{sorted(data.items())}",
                    {"name": name, "kind": "temporal.client", **data}, None, None)


def served(*workers: Revision, ids: tuple[str, ...] = ()) -> list[WorkerSpec]:
    specs, _ = select_workers(workers, ids)
    return specs


def summary(plan: Any) -> list[tuple[str, str, str]]:
    return [(c.action, c.spec.task_queue, c.reason) for c in plan.changes]


def test_nothing_changed_plans_nothing() -> None:
    entries = [worker("a", task_queue="qa"), worker("b", task_queue="qb")]
    plan = plan_reload(served(*entries), entries)
    assert plan.changes == () and plan.clients == () and plan.missing == () and plan.error is None


def test_a_new_entry_starts_its_task_queue_and_a_removed_one_drains() -> None:
    a, b = worker("a", task_queue="qa"), worker("b", task_queue="qb")
    assert summary(plan_reload(served(a), [a, b])) == [("start", "qb", "new entry app:b")]
    assert summary(plan_reload(served(a, b), [a])) == [("stop", "qb", "app:b was removed from the registry")]


def test_a_changed_task_queue_drains_the_old_queue_and_starts_the_new_one() -> None:
    plan = plan_reload(served(worker("a", task_queue="qa")), [worker("a", task_queue="qa2")])
    assert summary(plan) == [("stop", "qa", "app:a moved to task queue qa2"),
                             ("start", "qa2", "app:a moved from task queue qa")]


def test_changed_options_or_versioning_restart_the_worker() -> None:
    before = served(worker("a", task_queue="qa"))
    plan = plan_reload(before, [worker("a", task_queue="qa", worker_options={"max_cached_workflows": 10})])
    assert summary(plan) == [("restart", "qa", "worker_options defaults -> max_cached_workflows=10")]
    assert plan.changes[0].previous == before[0]
    assert plan.changes[0].spec.options == {"max_cached_workflows": 10}
    plan = plan_reload(before, [worker("a", task_queue="qa", versioning="auto_upgrade")])
    assert summary(plan) == [("restart", "qa", "versioning pinned -> auto_upgrade")]
    assert plan.changes[0].spec.versioning == "auto_upgrade"


def test_a_second_entry_joining_a_served_queue_only_updates_it() -> None:
    a = worker("a", task_queue="shared")
    plan = plan_reload(served(a), [a, worker("b", task_queue="shared")])
    assert summary(plan) == [("update", "shared", "entries app:a,app:b (were app:a)")]


def test_an_invalid_new_set_is_refused_and_changes_nothing() -> None:
    a = worker("a", task_queue="shared")
    plan = plan_reload(served(a), [a, worker("b", task_queue="shared", versioning="auto_upgrade"),
                                   worker("c", task_queue="qc")])
    assert plan.changes == ()
    assert plan.error is not None and "different versioning" in plan.error.message
    assert plan.to_dict()["error"]["hint"] == "give workers that share a task queue the same `versioning`"


def test_named_workers_only_follow_their_own_entries() -> None:
    a, b = worker("a", task_queue="qa"), worker("b", task_queue="qb")
    before = served(a, b, ids=("app:a",))
    assert [s.task_queue for s in before] == ["qa"]
    assert plan_reload(before, [a, b, worker("c", task_queue="qc")], ("app:a",)).changes == ()
    changed = plan_reload(before, [worker("a", task_queue="qa", versioning="auto_upgrade"), b], ("app:a",))
    assert [c.action for c in changed.changes] == ["restart"]


def test_a_named_worker_removed_from_the_registry_drains_and_is_reported_missing() -> None:
    a, b = worker("a", task_queue="qa"), worker("b", task_queue="qb")
    plan = plan_reload(served(a, b, ids=("app:a", "app:b")), [a], ("app:a", "app:b"))
    assert summary(plan) == [("stop", "qb", "app:b was removed from the registry")]
    assert plan.missing == ("app:b",)


def test_a_changed_connection_of_a_connected_client_needs_a_restart() -> None:
    a = worker("a", task_queue="qa")
    opened = client(address="localhost:7233", namespace="default")
    moved = client(address="temporal.internal:7233", namespace="default", tls=True)
    plan = plan_reload(served(a), [a], clients={"app:client": moved},
                       connected={"app:client": connection_fields(opened)})
    assert plan.changes == ()
    assert [(c.client_id, c.fields) for c in plan.clients] == [("app:client", ("address", "tls"))]
    assert "restart the worker to use the new settings" in plan.clients[0].message
    # a description or meta change is not a connection change
    relabelled = client(address="localhost:7233", namespace="default", description="prod")
    assert plan_reload(served(a), [a], clients={"app:client": relabelled},
                       connected={"app:client": connection_fields(opened)}).clients == ()
    # clients the process did not connect itself (given to serve()) are not checked
    assert plan_reload(served(a), [a], clients={"app:client": moved}).clients == ()


def test_a_worker_moving_to_another_client_restarts_on_that_client() -> None:
    plan = plan_reload(served(worker("a", task_queue="qa")), [worker("a", task_queue="qa", client="other")])
    assert summary(plan) == [("stop", "qa", "app:a moved to client app:other"),
                             ("start", "qa", "app:a moved from client app:client")]
    assert plan.actions("start")[0].spec.client_id == "app:other"


def test_every_worker_removed_stops_them_all() -> None:
    a, b = worker("a", task_queue="qa"), worker("b", task_queue="qb")
    plan = plan_reload(served(a, b), [])
    assert sorted(c.spec.task_queue for c in plan.actions("stop")) == ["qa", "qb"]
    assert plan.error is None

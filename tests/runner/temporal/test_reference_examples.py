"""reference/003's examples (the API without the process module) run end to end on the real dev server.

Entries: tests/runner/entries/reference (namespace app) and tests/runner/entries/reference_saga.
Each test checks the run's result, how often each activity ran (Python activities keep a
journal; Lua ones are counted in the history), and then replays the run's history
``REPLAYS`` times in fresh Lua interpreters with 0 divergences (docs/sandbox.md, Determinism).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from temporalio.api.enums.v1 import IndexedValueType, WorkflowTaskFailedCause
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributeKey

from tests.support.histories import activity_types, completed_activity_types, event_kinds, events, with_source
from tests.support.reference import REFERENCE, SAGA, reference_activities, saga_activities
from tests.support.replay import assert_replays, replay
from tests.support.worker import LuaProject, lua_worker


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
async def reference(dev_server: Any) -> AsyncIterator[LuaProject]:
    """One worker serving tests/runner/entries/reference for the whole module."""
    async with lua_worker(await dev_server.client(), REFERENCE) as project:
        yield project


@pytest.fixture(scope="module")
async def saga(dev_server: Any) -> AsyncIterator[LuaProject]:
    async with lua_worker(await dev_server.client(), SAGA) as project:
        yield project


async def finish(project: LuaProject, entry_id: str, value: Any, **kwargs: Any) -> tuple[Any, Any]:
    """Run to completion; return (result, history), after proving the history replays."""
    handle = await project.start(entry_id, value, **kwargs)
    result = await handle.result()
    history = await handle.fetch_history()
    await assert_replays(project.source, history)
    return result, history


# ---------------------------------------------------------------- the basic order workflow


async def test_order_is_charged_then_shipped_after_the_durable_wait(reference: LuaProject) -> None:
    order_id, customer = unique("o"), unique("c")
    order = {"id": order_id, "customer_id": customer, "total": 120, "shipping_address": "1 Main St",
             "ship_after": "300ms"}
    result, history = await finish(reference, "app:order_workflow", order)
    assert result == {"status": "completed", "payment_id": f"pay-{customer}", "tracking": f"TRK-{order_id}"}
    charged = {"amount": 120, "customer": customer}
    assert reference_activities.calls("charge_payment", charged) == [charged]
    assert len(reference_activities.calls("ship_order", {"order_id": order_id, "address": "1 Main St"})) == 1
    assert reference_activities.calls("refund_payment", f"pay-{customer}") == []
    assert activity_types(history) == ["app:charge_payment", "app:ship_order"]
    timers = events(history, "timer_started_event_attributes")
    assert [t.start_to_fire_timeout.ToTimedelta() for t in timers] == [timedelta(milliseconds=300)]
    kinds = event_kinds(history)
    scheduled = [i for i, kind in enumerate(kinds) if kind == "activity_task_scheduled_event_attributes"]
    assert scheduled[0] < kinds.index("timer_fired_event_attributes") < scheduled[1], "charge, wait, then ship"


async def test_a_failed_shipment_refunds_the_payment(reference: LuaProject) -> None:
    order_id, customer = unique("o"), unique("c")
    order = {"id": order_id, "customer_id": customer, "total": 40, "ship_after": "200ms"}  # no address
    result, history = await finish(reference, "app:order_workflow", order)
    assert result == {"status": "failed", "error": f"INVALID: order {order_id} has no shipping address"}
    assert reference_activities.calls("refund_payment", f"pay-{customer}") == [f"pay-{customer}"]
    assert activity_types(history) == ["app:charge_payment", "app:ship_order", "app:refund_payment"]
    assert completed_activity_types(history) == ["app:charge_payment", "app:refund_payment"]


async def test_a_declined_charge_ends_the_order_before_any_wait(reference: LuaProject) -> None:
    order_id, customer = unique("o"), unique("c")
    order = {"id": order_id, "customer_id": customer, "total": 0, "shipping_address": "1 Main St"}
    result, history = await finish(reference, "app:order_workflow", order)
    assert result == {"status": "failed", "error": "INVALID: amount must be positive"}
    assert activity_types(history) == ["app:charge_payment"]
    assert events(history, "timer_started_event_attributes") == [], "the 1h default wait never started"


# ---------------------------------------------------------------- activity errors


@pytest.mark.parametrize(("order", "kind", "retryable", "message", "attempts"), [
    ({"quantity": 1}, "INVALID", False, "the order names no sku", 1),
    ({"sku": "discontinued", "quantity": 1}, "NOT_FOUND", False, "sku discontinued is not in the catalog", 1),
    # retryable: the entry's retry policy (maximum_attempts: 2) runs it twice before Lua sees it
    ({"sku": "chair", "quantity": 11}, "OUT_OF_STOCK", True, "only 10 left of chair", 2),
])
async def test_activity_errors_reach_lua_with_kind_retryable_and_message(
        reference: LuaProject, order: dict[str, Any], kind: str, retryable: bool, message: str,
        attempts: int) -> None:
    result, history = await finish(reference, "app:risky_order", order)
    assert result == {"failed": True, "kind": kind, "retryable": retryable, "message": message}
    started = events(history, "activity_task_started_event_attributes")
    assert [s.attempt for s in started] == [attempts], "the history records only the last attempt"


async def test_a_successful_risky_call_returns_its_result(reference: LuaProject) -> None:
    result, _ = await finish(reference, "app:risky_order", {"sku": "lamp", "quantity": 3})
    assert result == {"failed": False, "result": {"reserved": "lamp", "quantity": 3}}


async def test_an_executor_with_one_attempt_gets_internal_for_a_runtime_error(reference: LuaProject) -> None:
    result, history = await finish(reference, "app:failure_modes", {"quantity": 2})  # no price
    assert result["ok"] is False
    assert result["kind"] == "INTERNAL", "a Lua runtime error in an activity is INTERNAL"
    assert result["retryable"] is True, "...and retryable: the executor, not the error, stopped the retries"
    assert result["message"] == "unreliable_activity.lua:4: attempt to perform arithmetic on a nil value " \
                                "(field 'price')"
    # the entry allows 5 attempts; the executor's {maximum_attempts = 1} wins
    assert [s.attempt for s in events(history, "activity_task_started_event_attributes")] == [1]
    [failed] = events(history, "activity_task_failed_event_attributes")
    assert failed.failure.application_failure_info.type == "INTERNAL"
    scheduled = events(history, "activity_task_scheduled_event_attributes")
    assert scheduled[0].retry_policy.maximum_attempts == 1
    assert scheduled[0].retry_policy.initial_interval.ToTimedelta() == timedelta(milliseconds=100), \
        "the override is merged onto the entry's retry policy key by key"


async def test_the_same_executor_returns_results_when_the_activity_succeeds(reference: LuaProject) -> None:
    result, _ = await finish(reference, "app:failure_modes", {"price": 5, "quantity": 3})
    assert result == {"ok": True, "result": {"total": 15}}


# ---------------------------------------------------------------- versioning


async def wait_for_event(handle: WorkflowHandle[Any, Any], attributes: str, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not events(await handle.fetch_history(), attributes):
            await asyncio.sleep(0.1)


async def test_workflow_version_keeps_in_flight_runs_on_the_old_branch(dev_server: Any) -> None:
    client = await dev_server.client()
    # auto_upgrade: the running workflow moves to the newest revision at its next task (docs/operations.md)
    async with lua_worker(client, REFERENCE, versioning="auto_upgrade") as project:
        with_version = project.source.workflow("app:payment_workflow")
        before = with_source(with_version, (REFERENCE / "payment_workflow_before_v2.lua").read_text())
        project.source.add(before)  # "payment-v2" is not deployed yet
        old_id, new_id = unique("old"), unique("new")
        old_run = await project.start("app:payment_workflow", {"id": old_id, "settle": "1500ms"})
        await wait_for_event(old_run, "timer_started_event_attributes")  # paid the old way, now waiting

        project.source.add(with_version)  # deploy the change
        new_run = await project.start("app:payment_workflow", {"id": new_id, "settle": "200ms"})
        assert await new_run.result() == {"version": 2, "payment": f"new-{new_id}"}
        assert await old_run.result() == {"version": 1, "payment": f"old-{old_id}"}
        old_history, new_history = await old_run.fetch_history(), await new_run.fetch_history()

    # the old run continued on the new code: it reported version 1 and paid once, the old way
    assert reference_activities.calls("old_payment", {"id": old_id, "settle": "1500ms"}) != []
    assert len(reference_activities.calls("old_payment", {"id": old_id, "settle": "1500ms"})) == 1
    assert reference_activities.calls("new_payment", {"id": old_id, "settle": "1500ms"}) == []
    assert activity_types(old_history) == ["app:old_payment"]
    assert events(old_history, "marker_recorded_event_attributes") == [], "a replayed version records nothing"
    assert activity_types(new_history) == ["app:new_payment"]
    assert len(events(new_history, "marker_recorded_event_attributes")) == 1, "a new run records its version"
    # both histories replay on the current code (as an auto_upgrade worker runs them)
    await assert_replays(project.source, old_history, new_history, follow_pins=False)

    # code that dropped version 2 cannot continue a run that took it: a clear error, not a wrong branch
    assert with_version.source is not None
    dropped_v2 = with_version.source.replace('"payment-v2", 1, 2', '"payment-v2", 1, 1')
    project.source.add(with_source(with_version, dropped_v2))
    [dropped] = (await replay(project.source, [new_history], follow_pins=False)).replay_failures.values()
    assert "workflow.version('payment-v2', 1, 1): this run already took version 2" in str(dropped)


# ---------------------------------------------------------------- run information and attributes


async def test_workflow_info_describes_the_run(reference: LuaProject, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="temporalio.workflow")
    workflow_id = unique("info")
    handle = await reference.start("app:info_workflow", workflow_id=workflow_id)
    info = await handle.result()
    assert info == {
        "workflow_id": workflow_id,
        "run_id": handle.result_run_id,
        "workflow_type": "app:info_workflow",
        "task_queue": reference.task_queue,
        "namespace": "default",
        "attempt": 1,
        # the first workflow task: WorkflowExecutionStarted, WorkflowTaskScheduled, WorkflowTaskStarted
        "history_length": 3,
        "history_size": info["history_size"],
    }
    assert info["history_size"] > 0

    def printed() -> list[str]:
        return [r.getMessage() for r in caplog.records if "[info_workflow.lua:" in r.getMessage()]

    # print() lines reach the worker log with their Lua file:line...
    assert [line.split(" ", 1)[0] for line in printed()] == [f"[info_workflow.lua:{n}]" for n in range(6, 14)]
    assert printed()[0].startswith(f"[info_workflow.lua:6] {workflow_id}")
    # ...once: replaying the run prints nothing (docs/sandbox.md)
    before = len(printed())
    await assert_replays(reference.source, await handle.fetch_history())
    assert len(printed()) == before


async def test_history_length_and_size_grow_with_each_activity(reference: LuaProject) -> None:
    result, history = await finish(reference, "app:history_workflow", unique("k"))
    # 3 events before the first task ran; the activity adds WorkflowTaskCompleted, ActivityTaskScheduled,
    # Started, Completed, then the next WorkflowTaskScheduled and Started: 9
    assert result["before"]["length"] == 3
    assert result["after"]["length"] == 9
    assert [e.event_id for e in history.events][8] == 9
    assert event_kinds(history)[8] == "workflow_task_started_event_attributes"
    assert 0 < result["before"]["size"] < result["after"]["size"]


SEARCH_ATTRIBUTES = {
    "status": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "customer_id": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "order_total": IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
}


async def register_search_attributes(client: Client) -> None:
    """Register the reference's search attributes (the dev server fixture only has FlowctlRevision)."""
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace))
    missing = {name: kind for name, kind in SEARCH_ATTRIBUTES.items() if name not in listed.custom_attributes}
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing))


async def test_attrs_sets_search_attributes_and_memo(reference: LuaProject) -> None:
    await register_search_attributes(reference.client)
    customer = unique("cust")
    handle = await reference.start("app:attrs_workflow", {"customer_id": customer, "total": 129.95})
    assert await handle.result() == {"status": "processing"}
    described = await handle.describe()
    memo = await described.memo()
    assert memo["notes"] == "Priority customer" and memo["source"] == "web"
    assert "flowctl.revision" in memo, "the revision pin stays next to the user's memo"
    attributes = described.typed_search_attributes
    assert attributes.get(SearchAttributeKey.for_keyword("status")) == "processing"
    assert attributes.get(SearchAttributeKey.for_keyword("customer_id")) == customer
    assert attributes.get(SearchAttributeKey.for_float("order_total")) == 129.95
    await assert_replays(reference.source, await handle.fetch_history())


async def test_an_unregistered_search_attribute_fails_the_task_naming_it(reference: LuaProject) -> None:
    handle = await reference.start("app:unknown_attr_workflow")
    try:
        await wait_for_event(handle, "workflow_task_failed_event_attributes")
        [failed, *_] = events(await handle.fetch_history(), "workflow_task_failed_event_attributes")
    finally:
        await handle.terminate(reason="test done")
    assert failed.cause == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_BAD_SEARCH_ATTRIBUTES
    assert "flowctl_never_registered" in failed.failure.message


# ---------------------------------------------------------------- timers and workflow time


async def test_timers_of_several_durations_are_durable_temporal_timers(reference: LuaProject) -> None:
    result, history = await finish(reference, "app:timers", None)
    timers = [t.start_to_fire_timeout.ToTimedelta() for t in events(history, "timer_started_event_attributes")]
    # time.after("300ms") first, then the sleeps: "200ms", 100 * time.MILLISECOND, 150 (ms)
    assert timers == [timedelta(milliseconds=ms) for ms in (300, 200, 100, 150)]
    assert len(events(history, "timer_fired_event_attributes")) == 4
    assert result["elapsed_ms"] >= 450
    assert result["deadline_ms"] >= 300
    assert result["deadline_ms"] <= result["elapsed_ms"], "the deadline fired while the sleeps waited"


async def test_elapsed_time_is_measured_on_the_workflow_clock(reference: LuaProject) -> None:
    result, history = await finish(reference, "app:elapsed", None)
    started, completed = history.events[0].event_time.ToDatetime(), history.events[-1].event_time.ToDatetime()
    assert 1000 <= result["elapsed_ms"] <= (completed - started).total_seconds() * 1000


async def test_the_reference_timers_verbatim_on_the_time_skipping_server(time_skipping_env: Any) -> None:
    async with lua_worker(time_skipping_env.client, REFERENCE) as project:
        handle = await project.start("app:long_timers")
        result = await handle.result()
        history = await handle.fetch_history()
    await assert_replays(project.source, history)
    day_and_a_bit = (24 * 3600 + 5 * 60 + 30) * 1000 + 100
    assert day_and_a_bit <= result["elapsed_ms"] < day_and_a_bit + 60_000


# ---------------------------------------------------------------- replay-safe operations


async def test_replay_safe_operations_return_recorded_values(reference: LuaProject) -> None:
    key = unique("k")
    result, history = await finish(reference, "app:replay_safe", key)
    assert result["data"] == {"key": key, "items": [1, 2, 3]}
    assert result["bytes"] == 32
    assert result["version"] == 2
    assert uuid.UUID(result["request_id"]).version == 4
    assert result["now"].endswith("Z")
    assert reference_activities.calls("fetch_data", key) == [key], "replays never call the activity again"
    assert activity_types(history) == ["app:fetch_data"]
    assert len(events(history, "marker_recorded_event_attributes")) == 1, "workflow.version recorded its answer"


# ---------------------------------------------------------------- the saga


@pytest.mark.parametrize(("case", "expected", "ran"), [
    ("ok", {"status": "completed", "tracking": "TRK-{id}"},
     ["reserve_inventory", "charge_payment", "ship_order"]),
    ("declined", {"status": "failed", "step": "payment", "error": "PAYMENT_DECLINED: card declined"},
     ["reserve_inventory", "charge_payment", "release_inventory"]),
    # compensations run newest first: refund the payment, then release the inventory
    ("no_address", {"status": "failed", "step": "shipping", "error": "INVALID: no address to ship to"},
     ["reserve_inventory", "charge_payment", "ship_order", "refund_payment", "release_inventory"]),
])
async def test_the_saga_compensates_completed_steps_in_reverse_order(
        saga: LuaProject, case: str, expected: dict[str, Any], ran: list[str]) -> None:
    order_id = unique("order")
    order = {
        "items": [{"sku": f"desk-{order_id}"}],
        "payment": {"order_id": order_id, "card": "declined" if case == "declined" else "visa"},
        "shipping": {"order_id": order_id, "address": "" if case == "no_address" else "1 Main St"},
    }
    result, history = await finish(saga, "app:order_saga", order)
    assert result == {k: v.replace("{id}", order_id) for k, v in expected.items()}
    assert saga_activities.journal_of(order_id) == ran
    assert activity_types(history) == [f"app:{name}" for name in ran]

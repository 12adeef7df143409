"""runner.revision_source: what a worker serves, and lookups from outside workflows (one NOT_FOUND bridge)."""

from __future__ import annotations

import pytest

from registry.errors import FlowError
from runner.revision_source import ProjectRevisionSource, require_entry
from runner.sandbox.failures import FlowFailure
from tests.support.paths import EXAMPLES


@pytest.fixture(scope="module")
def source() -> ProjectRevisionSource:
    return ProjectRevisionSource.from_paths([EXAMPLES])


def test_lookups_by_id_and_workflow_type(source: ProjectRevisionSource) -> None:
    workflow = source.workflow("app:order_workflow")
    assert workflow.kind == "workflow.lua" and workflow.workflow_type == "app:order_workflow"
    assert workflow.worker_id == "app:worker"
    assert source.entry("app:worker").task_queue == source.entry("app:worker").data.get("task_queue", "app:worker")
    assert source.activity("app:charge_payment").kind in ("function.lua", "function.python")


def test_inside_workflows_a_missing_entry_is_a_not_found_failure(source: ProjectRevisionSource) -> None:
    with pytest.raises(FlowFailure) as caught:
        source.activity("app:nope")
    assert (caught.value.kind, caught.value.retryable) == ("NOT_FOUND", False)
    assert "activity 'app:nope' is not in the registry" in caught.value.message


def test_outside_workflows_not_found_becomes_a_flow_error_with_the_hint(source: ProjectRevisionSource) -> None:
    with pytest.raises(FlowError) as caught:
        require_entry(source.entry, "app:nope", hint="list entries with `flowctl registry list`")
    assert caught.value.message == "entry 'app:nope' is not in the registry; apply it with `flowctl apply`"
    assert caught.value.hint == "list entries with `flowctl registry list`"


def test_outside_workflows_a_message_of_its_own_keeps_the_failure_as_the_hint(source: ProjectRevisionSource) -> None:
    with pytest.raises(FlowError) as caught:
        require_entry(source.entry, "app:gone", message="app:x: its worker app:gone is not in the registry")
    assert caught.value.message == "app:x: its worker app:gone is not in the registry"
    assert caught.value.hint == "entry 'app:gone' is not in the registry; apply it with `flowctl apply`"


def test_found_entries_pass_through(source: ProjectRevisionSource) -> None:
    assert require_entry(source.entry, "app:worker", hint="unused") is source.entry("app:worker")

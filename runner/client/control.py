"""The calls behind ``flowctl run|describe|list|versions|signal|query|update|cancel|terminate``.

Each one is synchronous: it opens the registry (never creating it), picks the
``temporal.client`` entry to connect with, makes one call on Temporal and returns a result
with ``to_dict()`` that ``runner.render`` prints. Command-line values arrive as text and are
parsed here (``runner.client.inputs``), so their errors name the option.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from temporalio.client import Client
from temporalio.service import RPCError

from registry.errors import FlowError
from registry.open_store import open_store
from registry.revision import WORKFLOW_KIND, Revision
from registry.store import RevisionStore
from runner.client.connect import connect, rpc_error
from runner.client.executions import (
    DEFAULT_STUCK_AFTER,
    Described,
    RunOutcome,
    StuckWatch,
    TaskFailure,
    client_entry,
    control_execution,
    describe_execution,
    run_entry,
    workflow_client,
)
from runner.client.inputs import parse_context, parse_input, parse_spec
from runner.client.listing import RunFilter, RunList, list_runs
from runner.client.open_versions import OpenVersions, open_versions
from runner.client.start import workflow_revision
from runner.revision_source import StoreRevisionSource
from runner.temporal.watchdog import quarantine_failure

__all__ = ["CONTROL_ACTIONS", "ControlResult", "control", "describe", "registry_client", "run", "runs", "versions"]

#: The calls on one workflow handle that ``control`` makes, each a ``flowctl`` command of that name.
CONTROL_ACTIONS = ("signal", "query", "update", "cancel", "terminate")

T = TypeVar("T")


@dataclass(frozen=True)
class ControlResult:
    """What one ``signal|query|update|cancel|terminate`` did."""

    action: str
    workflow_id: str
    name: str = ""
    #: what a query or update returned (None for the other actions)
    value: Any = None

    @property
    def returns_value(self) -> bool:
        """Whether the action answers with a value (query, update) rather than just ``ok``."""
        return self.action in ("query", "update")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view of an action without a value (``--json``)."""
        return {"ok": True, "workflow_id": self.workflow_id, "action": self.action}


def registry_client(registry_url: str | None, client_id: str | None) -> Revision:
    """The ``temporal.client`` entry ``client_id`` names, or the registry's only one."""
    with open_store(registry_url, create=False) as store:
        return client_entry(StoreRevisionSource(store), client_id)


def _connected(client_revision: Revision, call: Callable[[Client], Awaitable[T]], doing: str) -> T:
    """Connect with ``client_revision`` and make one call; a Temporal error the call left is ``doing: why``."""

    async def connected() -> T:
        client = await connect(client_revision)
        try:
            return await call(client)
        except RPCError as exc:
            raise rpc_error(exc, doing) from None

    return asyncio.run(connected())


def run(registry_url: str | None, entry_id: str, *, input_text: str | None = None, context_text: str | None = None,
        workflow_id: str | None = None, wait: bool = False, message_specs: Sequence[str] = (),
        option_specs: Sequence[str] = (), stuck_after: int = DEFAULT_STUCK_AFTER, stuck_timeout: float | None = None,
        on_stuck: Callable[[str, TaskFailure], None] | None = None) -> RunOutcome:
    """``flowctl run``: start ``entry_id`` pinned to its current revision; with ``wait``, await its result.

    While waiting, ``on_stuck`` hears when the run's workflow task has failed ``stuck_after`` times
    (again as more attempts fail, at most once a minute); after ``stuck_timeout`` seconds stuck the
    wait ends with the outcome's ``stuck`` set (the run stays open).
    """
    value = parse_input(input_text)
    context = parse_context(context_text)
    messages = [parse_spec(spec, "--message", required=False) for spec in message_specs]
    options = dict(parse_spec(spec, "--option", required=True) for spec in option_specs)
    with open_store(registry_url, create=False) as store:
        return asyncio.run(run_entry(StoreRevisionSource(store), entry_id, value, workflow_id=workflow_id, wait=wait,
                                     context=context, options=options, messages=messages,
                                     watch=StuckWatch(stuck_after, stuck_timeout),
                                     on_stuck=on_stuck))


def describe(registry_url: str | None, client_id: str | None, workflow_id: str,
             run_id: str | None = None) -> Described:
    """``flowctl describe``: status, revision, why it is stuck, pending activities and outcome of one execution."""
    with open_store(registry_url, create=False) as store:
        client_revision = client_entry(StoreRevisionSource(store), client_id)
        upgrades = _upgrades(store)
        quarantined = [{**record.to_dict(), "message": quarantine_failure(record).message}
                       for record in store.quarantined_runs(workflow_id)]
    return _connected(client_revision, lambda client: describe_execution(client, workflow_id, run_id,
                                                                         upgrades=upgrades, quarantined=quarantined),
                      f"cannot describe {workflow_id}")


def runs(registry_url: str | None, client_id: str | None, *, entry_id: str | None = None, revision: str | None = None,
         status: str | None = None, query: str | None = None, limit: int = 100) -> RunList:
    """``flowctl list``: runs (of ``entry_id``, at ``revision``, in ``status``), newest first, stuck ones marked.

    Connects with ``--client``, else the entry's worker's client, else the registry's only one.
    """
    with open_store(registry_url, create=False) as store:
        source = StoreRevisionSource(store)
        workflow = workflow_revision(source, entry_id) if entry_id else None
        if revision and workflow is not None:
            revision = store.resolve(workflow.entry_id, revision).digest
        elif revision and any(c not in "0123456789abcdef" for c in revision.lower()):
            raise FlowError(f"--revision {revision!r} is not a revision digest",
                            hint="pass a hex digest or a prefix of one, as `flowctl list` or `registry show` print")
        client_revision = (workflow_client(source, workflow) if workflow is not None and not client_id
                           else client_entry(source, client_id))
        entries = {rev.workflow_type: rev.entry_id for rev in source.entries(WORKFLOW_KIND)}
        upgrades = _upgrades(store)
    wanted = RunFilter(workflow_type=workflow.workflow_type if workflow else None, revision=revision, status=status,
                       query=query, limit=limit)
    return _connected(client_revision, lambda client: list_runs(client, wanted, entries=entries, upgrades=upgrades),
                      "cannot list runs")


def _upgrades(store: RevisionStore) -> Mapping[tuple[str, str], str]:
    """The revision ``flowctl upgrade`` moved each run to, by ``(workflow_id, run_id)``."""
    return {key: move.digest for key, move in store.run_upgrades().items()}


def control(registry_url: str | None, client_id: str | None, action: str, workflow_id: str, *, name: str = "",
            input_texts: Sequence[str] = (), run_id: str | None = None, reason: str = "") -> ControlResult:
    """``flowctl signal|query|update|cancel|terminate``: one call on the workflow's handle."""
    client_revision = registry_client(registry_url, client_id)
    args = [parse_input(text) for text in input_texts]
    value = _connected(client_revision, lambda client: control_execution(client, workflow_id, action, name, args,
                                                                         run_id=run_id, reason=reason),
                       f"cannot {action} {workflow_id}")
    return ControlResult(action, workflow_id, name, value)


def versions(registry_url: str | None, entry_id: str, client_id: str | None = None) -> OpenVersions:
    """``flowctl versions``: the revisions and ``workflow.version`` branches the open runs of ``entry_id`` use."""
    with open_store(registry_url, create=False) as store:
        source = StoreRevisionSource(store)
        revision = workflow_revision(source, entry_id)
        client_revision = client_entry(source, client_id) if client_id else workflow_client(source, revision)
    return _connected(client_revision, lambda client: open_versions(client, revision),
                      f"cannot read the open runs of {revision.entry_id}")

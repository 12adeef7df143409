"""The replay gate's registry half, without a server: which workflows it checks, what apply does with its
verdict, and how the verdict reads. (registry/gate.py, registry/publish.py, registry/render.py)"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from registry import render
from registry.gate import NOT_NEEDED, GateRequest, GateTarget, GateVerdict, RunDivergence, WorkflowRuns, gate_targets
from registry.open_store import open_store
from registry.plan import Plan
from registry.publish import ApplyOutcome, TreeCheck, TreeDiff, apply_tree, diff_registry, plan_tree, publish_tree
from registry.store import RevisionStore
from tests.runner.rollout import apply_change, gate_project


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, str]:
    """The gate's test project, copied under a namespace of its own."""
    return gate_project(tmp_path)


@pytest.fixture
def store(tmp_path: Path, project: tuple[Path, str]) -> Iterator[RevisionStore]:
    """A registry with the project applied (every entry created: nothing for the gate)."""
    with open_store(str(tmp_path / "registry.db")) as opened:
        assert apply_tree([project[0]], opened).ok
        yield opened


def plan_of(entries: Path, store: RevisionStore) -> Plan:
    plan = plan_tree([entries], store).plan
    assert plan is not None
    return plan


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


class Recorder:
    """A gate callback that records its requests and answers ``verdict``."""

    def __init__(self, verdict: GateVerdict | None = None) -> None:
        self.requests: list[GateRequest] = []
        self.verdict = verdict or GateVerdict(seconds=0.25)

    def __call__(self, request: GateRequest) -> GateVerdict:
        self.requests.append(request)
        return self.verdict


def never_called(request: GateRequest) -> GateVerdict:
    raise AssertionError(f"the gate was called for {[t.entry_id for t in request.targets]}")


# -- selection ----------------------------------------------------------------------------------


def test_a_changed_workflow_on_an_auto_upgrade_worker_is_checked_and_one_on_a_pinned_worker_is_not(
        project: tuple[Path, str], store: RevisionStore) -> None:
    entries, ns = project
    apply_change(entries, "order_timer", "order")
    edit(entries / "report.lua", "return funcs.call", "local receipt = funcs.call")
    edit(entries / "report.lua", "{amount = input.amount})", "{amount = input.amount})\n    return receipt")
    plan = plan_of(entries, store)
    assert {c.entry_id for c in plan.writes()} == {f"{ns}:order", f"{ns}:report"}
    assert gate_targets(plan, store) == [GateTarget(
        f"{ns}:order", (f"{ns}:order",), f"{ns}:worker", f"{ns}:client",
        f"changed; worker {ns}:worker is auto_upgrade", upgrading_now=True)]


def test_created_workflows_have_no_runs_to_check(tmp_path: Path, project: tuple[Path, str]) -> None:
    with open_store(str(tmp_path / "empty.db")) as empty:
        plan = plan_of(project[0], empty)
        assert plan.counts()["created"] == 10
        assert gate_targets(plan, empty) == []


def test_a_changed_library_reaches_the_workflows_that_import_it(
        project: tuple[Path, str], store: RevisionStore) -> None:
    entries, ns = project
    edit(entries / "prices.lua", "amount * 2", "amount * 3")
    plan = plan_of(entries, store)
    assert {c.entry_id for c in plan.writes()} == {f"{ns}:prices", f"{ns}:priced"}, \
        "the workflow's revision embeds the library, so its digest changes too"
    assert [t.entry_id for t in gate_targets(plan, store)] == [f"{ns}:priced"]


def test_a_worker_turning_auto_upgrade_brings_in_its_unchanged_workflows(
        project: tuple[Path, str], store: RevisionStore) -> None:
    entries, ns = project
    edit(entries / "app.yaml", f"task_queue: {ns}-pinned-queue", f"task_queue: {ns}-pinned-queue\n"
                                                                  "    versioning: auto_upgrade")
    [target] = gate_targets(plan_of(entries, store), store)
    assert target.entry_id == f"{ns}:report" and target.worker_id == f"{ns}:pinned_worker"
    assert target.reason == f"its worker becomes auto_upgrade; worker {ns}:pinned_worker is auto_upgrade"
    assert not target.upgrading_now, "its runs are pinned today: a run failing on its pin is this apply's doing"


def test_a_worker_turning_pinned_still_checks_the_change_shipped_with_it(
        project: tuple[Path, str], store: RevisionStore) -> None:
    entries, ns = project
    edit(entries / "app.yaml", "versioning: auto_upgrade", "versioning: pinned")
    assert gate_targets(plan_of(entries, store), store) == [], "nothing changes for the runs of unchanged workflows"
    apply_change(entries, "order_swapped", "order")
    [target] = gate_targets(plan_of(entries, store), store)
    assert (target.entry_id, target.upgrading_now) == (f"{ns}:order", True), \
        "the running worker is auto_upgrade until it reloads: it moves the open runs onto the change"


# -- apply and diff with a gate --------------------------------------------------------------------


def test_apply_and_diff_never_call_the_gate_when_no_workflow_needs_it(
        tmp_path: Path, project: tuple[Path, str], store: RevisionStore) -> None:
    entries, ns = project
    edit(entries / "charge.lua", '"charged "', '"charged: "')
    url = str(tmp_path / "registry.db")
    diff = diff_registry([entries], url, gate=never_called)
    assert diff.gate == GateVerdict(skipped=NOT_NEEDED) and diff.gate.ok
    assert diff.to_dict()["gate"]["skipped"] == NOT_NEEDED
    outcome = publish_tree([entries], url, gate=never_called)
    assert outcome.ok and outcome.event is not None and outcome.event.note == ""
    assert render.applied(outcome, as_json=False)[0].text.startswith(f"{ns}:charge changed"), \
        "a gate that was not needed prints nothing"


def test_a_refusing_gate_writes_nothing_and_a_passing_one_is_noted(
        tmp_path: Path, project: tuple[Path, str], store: RevisionStore) -> None:
    entries, ns = project
    apply_change(entries, "order_swapped", "order")
    url = str(tmp_path / "registry.db")
    token = store.change_token()
    refusal = GateVerdict(divergences=(RunDivergence(f"{ns}:order", "wf-1", "run-1", True, "diverged", "differs"),))
    refusing = Recorder(refusal)
    for dry_run in (False, True):
        refused = publish_tree([entries], url, gate=refusing, dry_run=dry_run)
        assert not refused.ok and refused.results == [] and refused.gate is refusal
        assert refused.to_dict()["ok"] is False and refused.to_dict()["gate"]["divergences"][0]["run_id"] == "run-1"
    assert len(refusing.requests) == 2, "a dry run runs the gate too"
    assert store.change_token() == token, "nothing was written"

    [request] = refusing.requests[:1]
    old = store.current(f"{ns}:order")
    assert old is not None and request.current[f"{ns}:order"].digest == old.digest
    assert request.after[f"{ns}:order"].digest != old.digest
    assert request.after[f"{ns}:charge"] is request.current[f"{ns}:charge"], "unchanged entries are the registry's"

    passing = Recorder(GateVerdict(workflows=(WorkflowRuns(request.targets[0], open_runs=3, closed_runs=2),),
                                   seconds=1.44))
    applied = publish_tree([entries], url, gate=passing)
    assert applied.ok and applied.event is not None
    assert applied.event.note == "replay gate: 5 runs of 1 workflow replayed in 1.4 s"
    assert store.history(limit=1)[0].note == applied.event.note


def test_no_gate_records_the_reason_and_calls_nothing(
        tmp_path: Path, project: tuple[Path, str], store: RevisionStore) -> None:
    entries, _ = project
    apply_change(entries, "order_swapped", "order")
    outcome = publish_tree([entries], str(tmp_path / "registry.db"), gate=None, no_gate_reason="server down")
    assert outcome.ok and outcome.gate is not None and outcome.gate.skipped == "--no-gate"
    assert store.history(limit=1)[0].note == "replay gate skipped (--no-gate): server down"
    assert render.applied(outcome, as_json=False)[0].text == "replay gate: skipped (--no-gate): server down\n"


# -- how a verdict reads ---------------------------------------------------------------------------


def refusal(ns: str) -> GateVerdict:
    target = GateTarget(f"{ns}:order", (f"{ns}:order",), f"{ns}:worker", f"{ns}:client", "changed")
    diverged = RunDivergence(
        f"{ns}:order", "order-1", "run-1", True, "diverged", "history event 5 is …", event_id=5,
        history_command=f"activity {ns}:charge", new_command="timer 1s", where="order.lua:3",
        fix='if workflow.version("order-1", 1, 2) == 1 then\n    -- old\nelse\n    -- new\nend',
        fix_hint="at order.lua:3")
    stuck = RunDivergence(f"{ns}:order", "order-0", "run-0", False, "failed", "boom", where="order.lua:9",
                          already_failing=True)
    return GateVerdict(workflows=(WorkflowRuns(target, open_runs=1, closed_runs=1),), divergences=(diverged, stuck),
                       seconds=0.5)


def refused(verdict: GateVerdict) -> tuple[str, str]:
    """What ``flowctl apply`` prints for a plan the gate refused: (stdout, stderr)."""
    outputs = render.applied(ApplyOutcome([], ok=False, plan=Plan(), gate=verdict), as_json=False)
    return "".join(o.text for o in outputs if not o.err), "".join(o.text for o in outputs if o.err)


def test_a_refusal_names_the_runs_the_event_the_line_and_the_fix() -> None:
    verdict = refusal("app")
    assert not verdict.ok and [d.run_id for d in verdict.blocking] == ["run-1"]
    out, err = refused(verdict)
    assert out.splitlines() == [
        "replay gate: 2 of 2 runs of 1 workflow cannot replay on the new revisions (0.5 s)",
        "  app:order: 1 run diverged: order-1 (run-1, open)",
        "    history event 5: `activity app:charge`",
        "    the new code issues `timer 1s` at order.lua:3",
        '    fix: if workflow.version("order-1", 1, 2) == 1 then',
        "             -- old",
        "         else",
        "             -- new",
        "         end",
        "      at order.lua:3",
        "  app:order: 1 run failed: order-0 (run-0, closed) (failing on the registry's current revision too: not "
        "this apply's doing)",
        "    the new code fails its workflow task: boom at order.lua:9"]
    assert err.startswith("error: the replay gate refused: 1 run would fail on the new code; nothing was written\n")
    assert "--no-gate --reason TEXT" in err
    body = json.loads(json.dumps(verdict.to_dict()))
    assert (body["ok"], body["runs"], body["seconds"]) == (False, 2, 0.5)
    assert body["divergences"][0]["where"] == "order.lua:3" and body["divergences"][1]["already_failing"] is True
    assert body["workflows"][0]["open_runs"] == 1


def test_runs_that_diverge_alike_are_listed_together_and_diff_says_what_apply_would_do() -> None:
    one = refusal("app").divergences[0]
    many = GateVerdict(divergences=tuple(dataclasses.replace(one, workflow_id=f"order-{n}", run_id=f"run-{n}")
                                         for n in range(5)))
    out, _ = refused(many)
    assert "  app:order: 5 runs diverged: order-0 (run-0, open), order-1 (run-1, open), order-2 (run-2, open) and " \
           "2 more (--json lists them all)\n" in out
    assert out.count("fix:") == 1
    outputs = render.diffed(TreeDiff(TreeCheck([], ok=True), Plan(), gate=many), as_json=False)
    err = "".join(o.text for o in outputs if o.err)
    assert err.startswith("replay gate: `flowctl apply` would refuse: 5 runs would fail on the new code\n")


def test_a_gate_that_cannot_reach_the_runs_refuses_with_its_hint() -> None:
    verdict = GateVerdict(error="the replay gate cannot check the runs of app:order: cannot connect", hint="start it")
    assert not verdict.ok
    assert refused(verdict) == (
        "", "error: the replay gate cannot check the runs of app:order: cannot connect; nothing was written\n"
            "hint: start it\n")

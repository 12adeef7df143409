"""What the commands print, rendered without running them: ``registry.render``, ``runner.render``, ``to_dict()``.

The expected text is the output ``cli.py`` printed before rendering moved out of it; the
JSON bodies keep their keys, key order and values.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

import registry.render as registry_render
import runner.render as runner_render
from registry.diagnostics import Diagnostic, Severity
from registry.errors import FlowError
from registry.plan import Action, Plan, PlannedChange
from registry.publish import ApplyOutcome, EntryResult, Rollback, TreeCheck, TreeDiff
from registry.render import Output
from registry.revision import Revision
from registry.store import ApplyEvent, EntryChange, RevisionInfo
from runner.client.control import ControlResult
from runner.client.executions import Described, RunOutcome
from runner.client.inputs import parse_context, parse_spec
from runner.client.open_versions import OpenVersions
from runner.replay import ReplayReport, ReplayResult
from runner.sandbox.failures import FlowFailure

OLD = "a" * 64
NEW = "b" * 64
WARNING = Diagnostic("entries/app.yaml", 3, 5, "FC301", "unused import", severity=Severity.WARNING)


def revision(entry_id: str = "app:order", digest: str = NEW, source: str | None = "return {}\n") -> Revision:
    return Revision(entry_id=entry_id, kind="workflow.lua", digest=digest, data={"name": "order"}, source=source,
                    source_name="order.lua")


def stdout(outputs: list[Output]) -> str:
    return "".join(out.text for out in outputs if not out.err)


def stderr(outputs: list[Output]) -> str:
    return "".join(out.text for out in outputs if out.err)


def test_store_records_to_dict() -> None:
    change = EntryChange("app:order", "changed", NEW, OLD)
    event = ApplyEvent(7, "apply", "me@host", "2025-01-01T00:00:00Z", (change,))
    assert event.to_dict() == {"event": 7, "verb": "apply", "actor": "me@host", "at": "2025-01-01T00:00:00Z",
                               "note": "", "changes": [{"id": "app:order", "action": "changed", "digest": NEW,
                                                        "previous_digest": OLD}], "runs": []}
    info = RevisionInfo("app:order", "workflow.lua", NEW, 7, "2025-01-01T00:00:00Z", True)
    assert list(info.to_dict().items()) == [("digest", NEW), ("event", 7), ("at", "2025-01-01T00:00:00Z"),
                                            ("current", True)]


def test_diff_to_dict_keeps_its_keys_in_order() -> None:
    plan = Plan((PlannedChange("app:order", Action.CHANGED, revision(), revision(digest=OLD, source="return 1\n")),
                 PlannedChange("app:same", Action.UNCHANGED, revision("app:same"), revision("app:same"))))
    body = TreeDiff(TreeCheck([WARNING], ok=True), plan).to_dict()
    assert list(body) == ["ok", "prune", "has_changes", "counts", "diagnostics", "changes"]
    assert body["counts"] == {"created": 0, "changed": 1, "unchanged": 1, "deleted": 0}
    changed, same = body["changes"]
    assert list(changed) == ["id", "kind", "action", "digest", "previous_digest", "diff"]
    assert "-return 1\n+return {}\n" in changed["diff"] and same["diff"] == ""
    assert TreeDiff(TreeCheck([WARNING], ok=False)).to_dict() == {"ok": False, "diagnostics": [WARNING.to_dict()]}


def test_an_invalid_tree_prints_its_problems_on_stderr_or_as_json() -> None:
    invalid = ApplyOutcome(diagnostics=[WARNING], ok=False)
    text = registry_render.applied(invalid, as_json=False)
    assert stdout(text) == ""
    assert stderr(text).endswith("error: the tree is invalid; nothing was applied\n"
                                 "hint: fix the problems above (`flowctl validate` checks the tree on its own)\n")
    assert [out.color for out in text] == [None, "red", None]
    assert json.loads(stdout(registry_render.applied(invalid, as_json=True))) == {
        "ok": False, "diagnostics": [WARNING.to_dict()]}


def test_apply_lines_say_what_a_dry_run_would_do() -> None:
    plan = Plan((PlannedChange("app:new", Action.CREATED, revision("app:new"), None),), prune=True)
    results = [EntryResult("app:new", "workflow.lua", Action.CREATED, NEW, None),
               EntryResult("app:gone", "workflow.lua", Action.UNCHANGED, OLD, OLD, note="gone from the tree")]
    dry = ApplyOutcome(diagnostics=[], ok=True, plan=plan, results=results, dry_run=True)
    assert stdout(registry_render.applied(dry, as_json=False)) == (
        "app:new created (dry run)\napp:gone unchanged (gone from the tree)\ndry run: nothing was written\n")
    body = dry.to_dict()
    assert list(body) == ["ok", "dry_run", "prune", "counts", "event", "diagnostics", "entries"]
    assert body["event"] is None and body["prune"] is True and body["entries"][1]["note"] == "gone from the tree"
    assert registry_render.apply_progress(Plan()) == []
    assert registry_render.apply_progress(TreeCheck([], ok=True)) == []


def test_rollback_text_and_json() -> None:
    event = ApplyEvent(4, "rollback", "me@host", "t", (EntryChange("app:order", "changed", OLD, None),))
    done = Rollback("app:order", revision(digest=OLD), event)
    assert stdout(registry_render.rolled_back(done, as_json=False)) == (
        "app:order rolled back to aaaaaaaaaaaa (was nothing (it was deleted)) as event #4\n")
    assert done.to_dict() == {"id": "app:order", "digest": OLD, "event": 4, "previous_digest": None}
    same = Rollback("app:order", revision(digest=OLD), None)
    assert stdout(registry_render.rolled_back(same, as_json=False)) == (
        "app:order is already at aaaaaaaaaaaa; nothing to do\n")
    assert same.to_dict()["previous_digest"] == OLD


def test_history_json_escapes_non_ascii_as_it_always_did() -> None:
    event = ApplyEvent(1, "apply", "zoë@host", "t", ())
    assert "zo\\u00eb@host" in stdout(registry_render.history([event], None, as_json=True))
    assert stdout(registry_render.history([], "app:x", as_json=False)) == "no events for app:x\n"
    assert stdout(registry_render.entry_list([], as_json=False)) == "the registry is empty (run `flowctl apply`)\n"


def test_errors_go_to_stderr_with_their_hint() -> None:
    assert registry_render.failed(FlowError("no such entry", hint="list them")) == [
        Output("error: no such entry\n", err=True, color="red"), Output("hint: list them\n", err=True)]
    assert [out.text for out in registry_render.crashed(RuntimeError("disk on fire"))] == [
        "internal error: RuntimeError: disk on fire\n",
        "hint: rerun with FLOWCTL_DEBUG=1 for a traceback and report it\n"]


def test_run_prints_the_result_or_the_failure() -> None:
    outcome = RunOutcome("wf-1", "r-1", "app:order", "q", "0123456789abcdef", waited=True, result={"total": 42})
    assert stdout(runner_render.started(outcome, as_json=False)) == (
        'started wf-1 (run r-1) on q, revision 0123456789ab\n{\n  "total": 42\n}\n')
    failed = RunOutcome("wf-1", "r-1", "app:order", "q", "0123456789abcdef", waited=True,
                        failure=FlowFailure("INVALID", "bad amount", where="order.lua:3"))
    printed = runner_render.started(failed, as_json=False)
    assert stderr(printed) == "failed: INVALID: bad amount at order.lua:3\n" and printed[-1].color == "red"
    assert list(json.loads(stdout(runner_render.started(failed, as_json=True)))) == [
        "workflow_id", "run_id", "workflow_type", "task_queue", "revision", "status", "error"]


def test_describe_text() -> None:
    found = Described("wf-1", "r-1", "T", "failed", "q", "2025-01-01T00:00:00", None, 12, None,
                      pending_activities=[{"activity_type": "charge", "activity_id": "1", "attempt": 3,
                                           "state": "scheduled", "last_failure": "boom"}],
                      failure={"kind": "INVALID", "message": "bad"})
    assert stdout(runner_render.described(found, as_json=False)) == (
        "wf-1  failed\n  type:       T on q\n  run:        r-1\n  revision:   (not started by flowctl)\n"
        "  started:    2025-01-01T00:00:00\n  history:    12 events\n"
        "  pending:    charge attempt 3 (activity id 1, scheduled, last failure: boom)\n"
        "  failure:    INVALID: bad\n")


def test_versions_text_and_json() -> None:
    found = OpenVersions("app:order", "T", runs=3, revisions=Counter({NEW: 2, OLD: 1}),
                         versions={"greet": Counter({2: 2})}, current_revision=NEW)
    assert stdout(runner_render.versions(found, as_json=False)) == (
        "app:order (type T): 3 open run(s)\n  revision bbbbbbbbbbbb (current): 2\n  revision aaaaaaaaaaaa: 1\n"
        "  workflow.version('greet'): v2: 2, no marker (took min): 1\n")
    assert list(found.to_dict())[-1] == "current_revision"


def test_replay_report() -> None:
    report = ReplayReport([ReplayResult("a.json", "ok", "T", 10),
                           ReplayResult("b.json", "diverged", "T", 12, "history event 5 is `x`", "order.lua:4")])
    printed = runner_render.replayed(report, as_json=False)
    assert stdout(printed) == ("OK       a.json (T, 10 events)\nDIVERGED b.json (T, 12 events)\n"
                               "         history event 5 is `x`\n         at order.lua:4\n1 replayed OK, 1 failed\n")
    assert stderr(printed).startswith("hint: guard the change with workflow.version")
    assert report.to_dict()["ok"] is False and not report.ok and report.diverged


@pytest.mark.parametrize(("result", "as_json", "printed"), [
    (ControlResult("signal", "wf-1", "add"), False, "signal wf-1 add: ok\n"),
    (ControlResult("cancel", "wf-1"), True, '{"ok": true, "workflow_id": "wf-1", "action": "cancel"}\n'),
    (ControlResult("query", "wf-1", "total", {"n": "é"}), True, '{"n": "é"}\n'),
    (ControlResult("update", "wf-1", "set", 5), False, "5\n"),
])
def test_control_results(result: ControlResult, as_json: bool, printed: str) -> None:
    assert stdout(runner_render.controlled(result, as_json=as_json)) == printed


def test_dev_lines() -> None:
    assert runner_render.dev_applied(12, 3, ".flowctl/registry.db") == (
        "applied 12 entries to .flowctl/registry.db (3 created or changed)")
    assert runner_render.dev_server("127.0.0.1:7233", None, Path(".flowctl")) == (
        "Temporal dev server on 127.0.0.1:7233 (state in .flowctl/)")
    assert runner_render.demo_started("app:order", None, has_input=True) == "demo: starting app:order null"
    assert runner_render.demo_started("app:order", None, has_input=False) == "demo: starting app:order"


def test_command_line_values() -> None:
    assert parse_spec("tenant", "--message", required=False) == ("tenant", None)
    assert parse_spec("timeout=1h", "--option", required=True) == ("timeout", "1h")
    assert parse_spec('memo={"a": 1}', "--option", required=True) == ("memo", {"a": 1})
    with pytest.raises(FlowError, match="--option 'timeout' is not KEY=VALUE"):
        parse_spec("timeout", "--option", required=True)
    with pytest.raises(FlowError, match="--context must be a JSON object"):
        parse_context("[1]")
    assert parse_context(None) is None


def test_history_shows_notes_and_upgraded_runs() -> None:
    from registry.render import history
    from registry.store import RunUpgrade

    events = [ApplyEvent(9, "upgrade", "op@host", "t", (), note="bug fix",
                         runs=(RunUpgrade("order-1", "r-1", "app:order", NEW, OLD),)),
              ApplyEvent(8, "apply", "op@host", "t", (), note="replay gate skipped (--no-gate): server down")]
    text = "".join(str(out.text) for out in history(events, None, as_json=False))
    assert "#9  t  upgrade by op@host\n    note: bug fix\n" in text
    assert f"app:order run order-1 (r-1) upgraded {OLD[:12]} -> {NEW[:12]}" in text
    assert "note: replay gate skipped (--no-gate): server down" in text

"""Revisions: content-addressed digests over canonical YAML, source and imported libraries."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry.errors import FlowError
from registry.loader import load_project
from registry.revision import Revision, build_revisions, canonical_json, compute_digest
from tests.support.projects import ENTRY_FILE, write_project


def revisions_of(entries: Path) -> dict[str, Revision]:
    project = load_project([entries])
    assert project.diagnostics == []
    return build_revisions(project)


def test_revision_carries_source_imports_and_transitive_libraries(tmp_path: Path) -> None:
    revs = revisions_of(write_project(tmp_path))
    wf = revs["app:order_workflow"]
    assert wf.kind == "workflow.lua"
    assert (wf.namespace, wf.name) == ("app", "order_workflow")
    assert wf.source == (tmp_path / "entries" / "order_workflow.lua").read_text()
    assert wf.source_name == "order_workflow.lua"
    assert wf.imports == {"pricing": "app:pricing"}
    assert set(wf.libraries) == {"app:pricing", "app:money"}
    assert wf.libraries["app:money"] is revs["app:money"]
    assert len(wf.digest) == 64 and int(wf.digest, 16) >= 0
    assert revs["app:worker"].source is None and revs["app:worker"].source_name is None


def test_env_references_are_kept_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "elsewhere:7233")
    revs = revisions_of(write_project(tmp_path))
    assert revs["app:client"].data["address"] == "${env:TEMPORAL_ADDRESS:-localhost:7233}"


def test_digest_is_stable_across_directories_and_key_order(tmp_path: Path) -> None:
    first = revisions_of(write_project(tmp_path / "a"))
    reordered = ENTRY_FILE.replace(
        "    kind: temporal.worker\n    client: app:client\n",
        "    client: app:client\n    kind: temporal.worker\n",
    )
    second = revisions_of(write_project(tmp_path / "b", reordered))
    assert {k: r.digest for k, r in first.items()} == {k: r.digest for k, r in second.items()}


def test_changing_a_library_changes_every_importer_transitively(tmp_path: Path) -> None:
    before = revisions_of(write_project(tmp_path / "a"))
    new_money = "return {round = function(x) return x end}\n"
    after = revisions_of(write_project(tmp_path / "b", money_lua=new_money))
    changed = {k for k in before if before[k].digest != after[k].digest}
    assert changed == {"app:money", "app:pricing", "app:order_workflow"}


def test_changing_only_yaml_changes_the_digest(tmp_path: Path) -> None:
    before = revisions_of(write_project(tmp_path / "a"))
    edited = ENTRY_FILE.replace("modules: [funcs]", "modules: [funcs, time]")
    after = revisions_of(write_project(tmp_path / "b", edited))
    assert before["app:order_workflow"].digest != after["app:order_workflow"].digest
    assert before["app:pricing"].digest == after["app:pricing"].digest


def test_digest_separates_entry_ids_and_source_from_no_source() -> None:
    data = {"name": "x", "kind": "library.lua"}
    assert compute_digest("a:x", data, None, {}) != compute_digest("b:x", data, None, {})
    assert compute_digest("a:x", data, None, {}) != compute_digest("a:x", data, "", {})
    assert compute_digest("a:x", data, "", {}) != compute_digest("a:x", data, "", {"a:lib": "0" * 64})


def test_canonical_json_distinguishes_yaml_types() -> None:
    import datetime

    assert canonical_json({"b": 1, "a": [1.5, None]}) == '{"a":[1.5,null],"b":1}'
    assert canonical_json({"d": datetime.date(2024, 1, 2)}) != canonical_json({"d": "2024-01-02"})
    assert canonical_json({1: "x"}) != canonical_json({"1": "x"})
    assert canonical_json({"!timestamp": "x"}) != canonical_json(datetime.date(2024, 1, 2))
    assert canonical_json("é") == '"é"'


def test_import_cycle_is_a_flow_error(tmp_path: Path) -> None:
    cyclic = ENTRY_FILE.replace("    source: file://money.lua\n",
                                "    source: file://money.lua\n    imports: {pricing: pricing}\n")
    project = load_project([write_project(tmp_path, cyclic)])
    with pytest.raises(FlowError, match=r"import cycle: app:\w+ -> app:\w+ -> app:\w+") as info:
        build_revisions(project)
    assert info.value.hint


def test_import_of_missing_or_wrong_kind_is_a_flow_error(tmp_path: Path) -> None:
    missing = ENTRY_FILE.replace("{money: app:money}", "{money: app:nope}")
    with pytest.raises(FlowError, match="app:nope does not exist"):
        build_revisions(load_project([write_project(tmp_path / "a", missing)]))
    wrong = ENTRY_FILE.replace("{money: app:money}", "{money: worker}")
    with pytest.raises(FlowError, match=r"app:worker is a temporal\.worker"):
        build_revisions(load_project([write_project(tmp_path / "b", wrong)]))

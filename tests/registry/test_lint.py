"""Stage 4/5 details the data-driven cases do not show: facts, scoping, the cache, exports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from registry.lua.cache import AnalysisCache
from registry.lua.facts import ChunkFacts
from registry.lua.parser import analyze
from registry.validate import validate_project
from tests.support.paths import EXAMPLES

REFERENCE = EXAMPLES


def globals_read(source: str) -> list[str]:
    return [g.name for g in analyze(source).globals if not g.write]


def test_local_function_declared_later_is_a_global_at_the_earlier_use() -> None:
    source = "local function main() return helper() end\nlocal function helper() return 1 end\nreturn {main = main}"
    assert globals_read(source) == ["helper"]
    assert "helper" in analyze(source).local_names
    fixed = "local function helper() return 1 end\nlocal function main() return helper() end\nreturn {main = main}"
    assert globals_read(fixed) == []


def test_scoping_rules() -> None:
    assert globals_read("local x = x") == ["x"]  # the new local is not visible in its own initializer
    assert globals_read("local function f() return f() end") == []  # but a local function is
    assert globals_read("do local y = 1 end return y") == ["y"]
    assert globals_read("for i = 1, 2 do end return i") == ["i"]
    assert globals_read("repeat local z = 1 until z") == []  # `until` sees the loop body's locals
    assert globals_read("local _ENV = {} return anything") == []  # fields of a local _ENV are not globals
    assert [g.write for g in analyze("counter = 1 function f() end").globals] == [True, True]


def test_call_targets_through_locals_executors_and_chains() -> None:
    facts = analyze("""
        local f = require("funcs")
        local ex = f.new():with_options({})
        ex:call("app:a")
        f.async("b")
        local p = process.with_context({}):with_options({}):with_name("n"):with_message("t", 1)
        p:spawn("app:w", "app:worker")
        workflow.exec("app:child", {})
        local other = {call = print}
        other:call("not:tracked")
    """)
    assert [(c.api, c.target, c.role) for c in facts.calls] == [
        ("executor:call", "app:a", "target"), ("funcs.async", "b", "target"),
        ("process:spawn", "app:w", "target"), ("process:spawn", "app:worker", "worker"),
        ("workflow.exec", "app:child", "target")]


@pytest.mark.parametrize(("source", "kind", "names", "is_open"), [
    ("return {main = main, ['x'] = 1}", "table", ("main", "x"), False),
    ("local M = {}\nfunction M.main() end\nfunction M:other() end\nM.third = 1\nreturn M", "table",
     ("main", "other", "third"), False),
    ("local M = {}\nsetmetatable(M, {})\nreturn M", "table", (), True),
    ("local M = {}\nM[key()] = 1\nreturn M", "table", (), True),
    ("return make()", "unknown", (), False),
    ("if x then return {} end\nreturn {}", "unknown", (), False),
    ("x = 1", "none", (), False),
    ("return 'main'", "value", (), False),
])
def test_exports(source: str, kind: str, names: tuple[str, ...], is_open: bool) -> None:
    info = analyze(source).exports
    assert (info.kind, info.names, info.open) == (kind, names, is_open)


def test_facts_round_trip_through_json() -> None:
    facts = analyze((REFERENCE / "order_saga.lua").read_text())
    assert ChunkFacts.from_json(json.loads(json.dumps(facts.to_json()))) == facts


def test_cache_writes_once_and_survives_damage(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    AnalysisCache(cache_dir).facts("return {main = 1}")
    (record,) = (cache_dir / "lua").glob("*.json")
    second = AnalysisCache(cache_dir)
    assert second.facts("return {main = 1}").exports.names == ("main",)
    record.write_text("{not json")
    assert AnalysisCache(cache_dir).facts("return {main = 1}").exports.names == ("main",)
    assert json.loads(record.read_text())["exports"][0] == "table"  # rewritten


def test_unwritable_cache_is_ignored(tmp_path: Path) -> None:
    # a directory below a regular file cannot be created, not even by root
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert AnalysisCache(blocker / "cache").facts("return {}").exports.kind == "table"


def test_cache_path_that_is_a_file_is_ignored(tmp_path: Path) -> None:
    blocker = tmp_path / "cache"
    blocker.write_text("not a directory")
    report = validate_project([REFERENCE], cache_dir=blocker)
    assert report.ok


def test_warm_run_uses_the_caches_and_sees_edits(tmp_path: Path) -> None:
    project = tmp_path / "entries"
    project.mkdir()
    for item in REFERENCE.rglob("*"):
        if item.is_file():
            target = project / item.relative_to(REFERENCE)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(item.read_bytes())
    cache = tmp_path / "cache"
    assert validate_project([project], cache_dir=cache).ok
    assert (cache / "schema-valid.json").is_file() and list((cache / "lua").glob("*.json"))
    assert validate_project([project], cache_dir=cache).ok
    lua = project / "activities" / "ship_order.lua"
    lua.write_text(lua.read_text().replace("return { main = main }", "return { ship = main }"))
    yaml_file = project / "app.yaml"
    yaml_file.write_text(yaml_file.read_text().replace("task_queue: app-worker", "task_queue: 7"))
    codes = {d.code for d in validate_project([project], cache_dir=cache).diagnostics}
    assert codes == {"FC104", "FC409"}


def test_determinism_warnings_only_in_workflows(tmp_path: Path) -> None:
    (tmp_path / "e.yaml").write_text(
        'version: "1.0"\nnamespace: app\nentries:\n'
        "  - {name: client, kind: temporal.client}\n  - {name: worker, kind: temporal.worker, client: client}\n"
        "  - {name: a, kind: function.lua, source: file://a.lua, meta: {temporal: {activity: {worker: worker}}}}\n"
        "  - {name: lib, kind: library.lua, source: file://a.lua}\n")
    (tmp_path / "a.lua").write_text("local function main() return os.time() + math.random() end\n"
                                    "return {main = main}\n")
    assert validate_project([tmp_path], strict=True, cache_dir=None).diagnostics == []


def test_json_marks_of_literals_are_facts_that_survive_the_cache() -> None:
    facts = analyze('local j = require("json")\nlocal a, b = j.object("x"), json.array(1)\n'
                    "local c, d = json.object({1, 2}), json.array{k = 1}\n"
                    "local ok = {json.object(), json.array({}), json.object{a = 1}, json.object(t),\n"
                    "            json.array{1, b = 2}}")
    assert [(m.api, m.what, m.line) for m in facts.marks] == [
        ("json.object", "string", 2), ("json.array", "number", 2), ("json.object", "list", 3),
        ("json.array", "named", 3)]
    assert ChunkFacts.from_json(json.loads(json.dumps(facts.to_json()))).marks == facts.marks

"""The lint follows the value, not the name: guarded compatibility idioms pass, unguarded uses fail (issue 19).

Each source is linted as a workflow, an activity and a library entry (they get the same
analysis); docs/sandbox.md, Compatibility, lists the idioms.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from registry.lua.facts import ChunkFacts
from registry.lua.parser import analyze
from registry.validate import validate_project
from tests.support.projects import APP_HEADER

ENTRIES = APP_HEADER + """\
  - {name: lib, kind: library.lua, source: "file://code.lua"}
  - name: wf
    kind: workflow.lua
    source: file://code.lua
    meta: {temporal: {workflow: {worker: worker}}}
  - name: act
    kind: function.lua
    source: file://code.lua
    meta: {temporal: {activity: {worker: worker}}}
"""
TAIL = "\nreturn {main = function() return 1 end}\n"


def codes(tmp_path: Path, source: str) -> dict[str, list[tuple[str, int]]]:
    """(code, line) of every diagnostic, per entry ID, of `source` used by a workflow, an activity and a library."""
    (tmp_path / "entries.yaml").write_text(ENTRIES)
    (tmp_path / "code.lua").write_text(source + TAIL)
    report = validate_project([tmp_path], strict=True, cache_dir=None)
    found: dict[str, list[tuple[str, int]]] = {"app:lib": [], "app:wf": [], "app:act": []}
    for d in report.diagnostics:
        entry = {"entries[2]": "app:lib", "entries[3]": "app:wf", "entries[4]": "app:act"}[d.path.split(".")[0]]
        found[entry].append((d.code, d.line))
    return found


GUARDED = [
    "local unpack = table.unpack or unpack",
    "local unpack = rawget(table, 'unpack') or unpack",
    "local stdout = io and io.stdout or nil",
    "local randomseed = math.randomseed\nlocal function reseed(n) randomseed(n) end",
    "math.randomseed(42)",
    "if io then io.write('x') end",
    "if type(io) == 'table' then io.write('x') elseif debug then debug.traceback() end",
    "local has_io = io ~= nil",
    "local load5 = loadstring or load",
    "local w = io and io.write\nlocal exit = os.exit",
    "if package and package.loaded then package.loaded.x = 1 end",
]


@pytest.mark.parametrize("source", GUARDED)
def test_a_guarded_or_captured_idiom_validates_in_every_kind_of_entry(tmp_path: Path, source: str) -> None:
    assert codes(tmp_path, source) == {"app:lib": [], "app:wf": [], "app:act": []}


UNGUARDED = [
    ("local x = unpack({1, 2})", "FC403", 1),
    ("local stdout = io.stdout", "FC403", 1),
    ("local getenv = os.getenv\nlocal home = getenv('HOME')", "FC403", 2),
    ("local w = io\nw.write('x')", "FC403", 2),
    ("io:write('x')", "FC403", 1),
    ("if io then end\nio.write('x')", "FC403", 2),
    ("local s = string.dump(print)", "FC403", 1),
    ("math.randomseed()", "FC411", 1),
    ("local r = math.randomseed\nlocal function f() r() end", "FC411", 2),
    ("local t = {io}", "FC410", 1),
    ("print(unpack)", "FC410", 1),
]


@pytest.mark.parametrize(("source", "code", "line"), UNGUARDED)
def test_an_unguarded_use_keeps_its_code_in_every_kind_of_entry(tmp_path: Path, source: str, code: str,
                                                                line: int) -> None:
    found = codes(tmp_path, source)
    assert found == {"app:lib": [(code, line)], "app:wf": [(code, line)], "app:act": [(code, line)]}


def test_a_missing_name_read_is_a_warning_and_a_failing_use_an_error(tmp_path: Path) -> None:
    (tmp_path / "entries.yaml").write_text(ENTRIES)
    (tmp_path / "code.lua").write_text("local t = {io}\nio.write(t)" + TAIL)
    report = validate_project([tmp_path], strict=False, cache_dir=None)
    by_code = {d.code: d for d in report.diagnostics}
    assert by_code["FC410"].severity.value == "warning"
    assert by_code["FC410"].message == "`io` is nil in the flowctl sandbox"
    assert "guard it" in by_code["FC410"].hint
    assert by_code["FC403"].message == "`io` is not available in the flowctl sandbox: indexing it fails at run time"
    assert not report.ok


def test_how_a_value_is_used_survives_the_cache_round_trip() -> None:
    facts = analyze("local r = math.randomseed\nr(1)\nr()\nlocal u = table.unpack or unpack\nio.write(u)")
    uses = [(f.field, f.how, f.args) for f in facts.fields if f.field == "randomseed"]
    assert uses == [("randomseed", "captured", -1), ("randomseed", "call", 1), ("randomseed", "call", 0)]
    assert [(g.name, g.how) for g in facts.globals if g.name in ("unpack", "io")] == [
        ("unpack", "guarded"), ("io", "index")]
    assert ChunkFacts.from_json(facts.to_json()) == facts

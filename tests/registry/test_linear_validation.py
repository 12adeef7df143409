"""Validation stays linear in the number of findings (bench/validate_bench.py --broken times it).

Not timed: these tests count the work instead. The "did you mean" hints of FC202 and FC407
read indexes built once per validation (registry.suggest), and one hint compares the wrong
name with a bounded shortlist, not with every entry ID of the wanted kind.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import pytest

from registry import suggest
from registry.loader import load_project
from registry.suggest import CONFIRM, SMALL, EntryNames, NameIndex
from registry.validate import validate_project

WORKFLOW = 'local funcs = require("funcs")\nlocal function main() return funcs.call("{target}", {{}}) end\n' \
           "return {{main = main}}\n"


def write_project(root: Path, activities: int, broken: int) -> Path:
    """``activities`` activities, and ``broken`` workflows that call a missing one and name a missing worker."""
    lines = ['version: "1.0"', "namespace: app", "entries:",
             "  - {name: client, kind: temporal.client, address: 'localhost:7233'}",
             "  - {name: worker, kind: temporal.worker, client: client, task_queue: q}"]
    (root / "act.lua").write_text("return {main = function() return 1 end}\n")
    for n in range(activities):
        lines += [f"  - name: pay_{n}", "    kind: function.lua", "    source: file://act.lua",
                  "    meta: {temporal: {activity: {worker: worker}}}"]
    for n in range(broken):
        (root / f"wf_{n}.lua").write_text(WORKFLOW.format(target=f"app:pay_{n}x"))
        lines += [f"  - name: flow_{n}", "    kind: workflow.lua", f"    source: file://wf_{n}.lua",
                  "    modules: [funcs]", "    meta: {temporal: {workflow: {worker: wroker}}}"]
    (root / "entries.yaml").write_text("\n".join(lines) + "\n")
    return root


def test_a_validation_builds_each_candidate_index_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_project(tmp_path, activities=30, broken=40)
    built: list[int] = []
    build = NameIndex.__init__

    def counted(self: NameIndex, names: Any) -> None:
        built.append(1)
        build(self, names)

    monkeypatch.setattr(NameIndex, "__init__", counted)
    report = validate_project([tmp_path], cache_dir=None)
    codes = [d.code for d in report.diagnostics]
    assert codes.count("FC202") == 40 and codes.count("FC407") == 40
    # one index for workers (FC202), one for activities (FC407): not one per diagnostic
    assert len(built) == 2
    fc407 = next(d for d in report.diagnostics if d.code == "FC407" and "pay_3x" in d.message)
    assert fc407.hint.startswith("did you mean 'app:pay_3'? ")
    fc202 = next(d for d in report.diagnostics if d.code == "FC202")
    assert fc202.hint == "did you mean 'app:worker'? entries of kind temporal.worker: app:worker"


def test_one_hint_compares_a_bounded_number_of_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With 1,000 activities, each of the 20 hints looks at a shortlist, never at all 1,000 IDs."""
    write_project(tmp_path, activities=1000, broken=20)
    compared: list[int] = []
    real = difflib.get_close_matches

    def counting(word: str, possibilities: Any, *args: Any, **kw: Any) -> list[str]:
        pool = list(possibilities)
        compared.append(len(pool))
        return real(word, pool, *args, **kw)

    monkeypatch.setattr(suggest.difflib, "get_close_matches", counting)
    report = validate_project([tmp_path], cache_dir=None)
    hints = [d.hint for d in report.diagnostics if d.code == "FC407"]
    assert len(hints) == 20 and len(compared) >= 20
    assert max(compared) <= CONFIRM
    assert "did you mean 'app:pay_17'? " in [h[:len("did you mean 'app:pay_17'? ")] for h in hints]


def test_a_long_candidate_list_in_a_hint_is_cut(tmp_path: Path) -> None:
    names = EntryNames(load_project([write_project(tmp_path, activities=25, broken=0)]))
    listed = names.of(("function.lua",)).listed()
    assert listed.startswith("app:pay_0, app:pay_1, app:pay_10, ") and listed.endswith(" and 15 more")
    assert names.of(("temporal.worker",)).listed() == "app:worker"
    assert names.of(("library.lua",)).names == []


@pytest.mark.parametrize(("wrong", "meant"), [
    ("app:pay_1234x", "app:pay_1234"),  # a typo near the end
    ("app:pya_2718", "app:pay_2718"),  # near the start
    ("app:pay_99", "app:pay_99"),
    ("app:flow_7", "app:pay_7"),
    ("zzz", None),
])
def test_the_index_finds_what_difflib_finds_in_a_large_list(wrong: str, meant: str | None) -> None:
    ids = [f"app:pay_{n}" for n in range(SMALL * 20)]
    assert NameIndex(ids).closest(wrong) == meant
    assert difflib.get_close_matches(wrong, ids, n=1) == ([meant] if meant else [])

"""Validate => runnable for entry IDs in Lua (issue 12): every call form the lint accepts runs.

The lint (registry/lua/check.py) and the shims (runner/shims/funcs.py, process.py) read a bare
name the same way, through registry.entry_refs.qualify: the calling entry's namespace. The
workflow below uses every form the lint checks — bare and qualified IDs, through a local alias
of the function or of the module, ``require("funcs")``, executors, futures, ``workflow.exec``,
``process.*`` with a bare worker, and a library of the same namespace (registry/lua/library_names.py
covers other namespaces) — and runs on a real worker against the dev server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from registry.validate import validate_project
from tests.support.projects import APP_HEADER
from tests.support.worker import lua_worker

ENTRIES = APP_HEADER + """\
  - name: act
    kind: function.lua
    source: file://act.lua
    meta: {temporal: {activity: {worker: worker}}}
  - name: child
    kind: workflow.lua
    source: file://child.lua
    meta: {temporal: {workflow: {worker: worker}}}
  - name: util
    kind: library.lua
    source: file://util.lua
    modules: [funcs]
  - name: caller
    kind: workflow.lua
    source: file://caller.lua
    modules: [funcs, workflow, process]
    imports: {util: util}
    meta: {temporal: {workflow: {worker: worker}}}
"""
ACT = 'return { main = function(x) return "act:" .. tostring(x) end }\n'
CHILD = 'return { main = function(x) return "child:" .. tostring(x) end }\n'
#: (Lua expression returning ``result, err``, the result it must give); ACT/CHILD stand for the IDs
FORMS = [
    ('funcs.call(ACT, 1)', "act:1"),
    ('call(ACT, 2)', "act:2"),                      # a local holding funcs.call
    ('f.call(ACT, 3)', "act:3"),                    # a local holding the module
    ('required.call(ACT, 4)', "act:4"),             # require("funcs")
    ('funcs.async(ACT, 5):result()', "act:5"),
    ('funcs.new():call(ACT, 6)', "act:6"),
    ('funcs.new():with_options({["activity.start_to_close_timeout"] = "30s"}):call(ACT, 7)', "act:7"),
    ('funcs.new():async(ACT, 8):result()', "act:8"),
    ('workflow.exec(CHILD, 9)', "child:9"),
    ('process.exec(CHILD, WORKER, 10)', "child:10"),
    ('process.with_options({}):exec(CHILD, WORKER, 11)', "child:11"),
    ('util.call(12)', "act:12"),                    # library code: the importing entry's namespace
]


def caller_source(act: str, child: str, worker: str) -> str:
    lines = ['local f = funcs', 'local call = funcs.call', 'local required = require("funcs")',
             'local util = require("util")',
             'local function main()', '  local out = {}']
    for expression, _ in FORMS:
        code = expression.replace("ACT", f'"{act}"').replace("CHILD", f'"{child}"').replace("WORKER", f'"{worker}"')
        lines.append(f'  do local r, err = {code}; out[#out + 1] = err and ("error: " .. err:message()) or r end')
    lines += ['  return out', 'end', 'return { main = main }']
    return "\n".join(lines) + "\n"


def write(root: Path, act: str, child: str, worker: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "app.yaml").write_text(ENTRIES)
    (root / "act.lua").write_text(ACT)
    (root / "child.lua").write_text(CHILD)
    (root / "caller.lua").write_text(caller_source(act, child, worker))
    (root / "util.lua").write_text(f'local M = {{}}\nfunction M.call(x) return funcs.call("{act}", x) end\nreturn M\n')
    return root


def test_the_lint_checks_every_form(tmp_path: Path) -> None:
    """Each form names its target where the lint looks: a missing ID is FC407 on every line."""
    report = validate_project([write(tmp_path / "broken", "nope", "nochild", "worker")], cache_dir=None)
    found = sorted((Path(d.file).name, d.line) for d in report.diagnostics if d.code == "FC407")
    assert found == [("caller.lua", line) for line in range(7, 6 + len(FORMS))] + [("util.lua", 2)], \
        [(d.file, d.line, d.code, d.message) for d in report.diagnostics]


async def test_every_lint_accepted_call_form_runs(tmp_path: Path, dev_server: Any) -> None:
    client = await dev_server.client()
    expected = [result for _, result in FORMS]
    for label, (act, child, worker) in {"bare": ("act", "child", "worker"),
                                        "qualified": ("app:act", "app:child", "app:worker")}.items():
        project = write(tmp_path / label, act, child, worker)
        report = validate_project([project], strict=True, cache_dir=None)
        assert report.ok and not report.diagnostics, [d.message for d in report.diagnostics]
        async with lua_worker(client, project) as served:
            assert await served.run("app:caller") == expected, label

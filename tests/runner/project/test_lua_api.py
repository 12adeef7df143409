"""The Lua API description (runner/project/lua_api.yaml) against the real sandboxes, both ways, and what is
generated from it: the LuaLS stubs shipped in the package and docs/lua-api.md's tables.

A workflow run's sandbox is built as a worker builds it (every workflow module listed), an activity's as
runner/shims/activity_modules.py builds it (every activity module), a test file's with the ``test``
module; every name reachable from their globals, and every method of flowctl's object types, must be
described, and every described name must exist.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from registry.lua.parser import analyze
from registry.revision import Revision
from runner.project.api import Api, Function, load_api
from runner.project.stubs import render_docs, shipped_stubs, stub_files, write_stubs
from runner.revision_source import ProjectRevisionSource
from runner.sandbox.driver import WorkflowDriver
from runner.sandbox.runtime import LuaSandbox
from runner.shims.activity_modules import ActivityCalls, install_activity_modules
from runner.shims.run_context import WorkflowRun
from runner.shims.workflow_modules import install_workflow_modules
from runner.testing.lua_module import install_test_module
from tests.support.paths import EXAMPLES, REPO

#: every dotted name reachable from a table (not into flowctl's objects), with its Lua type or flowctl type name
WALK = """
return function(root, type_names, getmt)
    local out, seen = {}, {}
    local function walk(prefix, t)
        seen[t] = true
        for k, v in next, t do
            if type(k) == "string" then
                local name = prefix == "" and k or prefix .. "." .. k
                local mt = getmt(v)
                out[name] = mt and type_names[mt] or type(v)
                if type(v) == "table" and mt == nil and not seen[v] then walk(name, v) end
            end
        end
    end
    walk("", root)
    return out
end
"""
#: every flowctl object type the runtime defined -> its methods (parts built on demand are built first)
METHODS = """
return function(type_names)
    local out, built, more = {}, {}, true
    while more do  -- building a part may define more types (funcs' Future): until none is new
        local todo = {}
        for mt in next, type_names do if not built[mt] then todo[#todo + 1] = mt end end
        more = #todo > 0
        for _, mt in ipairs(todo) do
            built[mt] = true
            local _ = rawget(mt, "__index")["(build the on-demand part)"]
        end
    end
    for mt, name in next, type_names do
        local names = {}
        for k in next, rawget(mt, "__index") do names[#names + 1] = k end
        out[name] = table.concat(names, " ")
    end
    return out
end
"""


def workflow_sandbox() -> LuaSandbox:
    """A workflow run's sandbox with every workflow module listed, as a worker builds it."""
    api = load_api()
    sandbox = LuaSandbox(seed=7, spawn=True, clock_ns=lambda: 0, owner="wf.lua")
    listed = [m.name for m in api.modules_of("workflow.lua") if not m.always]
    revision = Revision(entry_id="app:wf", kind="workflow.lua", digest="0" * 64, data={"modules": listed},
                        source=None, source_name=None)
    run = WorkflowRun(sandbox=sandbox, driver=WorkflowDriver(sandbox, {}), revision=revision,
                      source=ProjectRevisionSource({}), context={})
    install_workflow_modules(run, listed)
    return sandbox


def activity_sandbox() -> LuaSandbox:
    """An activity call's sandbox with every activity module (an entry that lists none)."""
    sandbox = LuaSandbox(seed=7)
    calls = ActivityCalls(info=dict, heartbeat=lambda *_: None, is_cancelled=lambda: False,
                          wait_cancelled=lambda _s: False)
    install_activity_modules(sandbox, calls, None)
    return sandbox


def sandbox_of_a_test_file() -> LuaSandbox:
    """A *_test.lua file's sandbox: the built-in json and errors, and the test module."""
    sandbox = LuaSandbox(seed=7)
    sandbox.add_module("json")
    sandbox.add_module("errors")
    install_test_module(sandbox)
    return sandbox


def reachable(sandbox: LuaSandbox, root: Any = None) -> dict[str, str]:
    walk = sandbox.lua.execute(WALK)
    found = walk(sandbox.env if root is None else root, sandbox.kit.type_names, sandbox.kit.getmetatable)
    return dict(found.items())


def object_methods(sandbox: LuaSandbox) -> dict[str, set[str]]:
    found = sandbox.lua.execute(METHODS)(sandbox.kit.type_names)
    return {name: set(methods.split()) for name, methods in found.items()}


def described(api: Api, kind: str) -> set[str]:
    """Every dotted name the description says a sandbox of ``kind`` holds."""
    names: set[str] = set()
    for module in api.modules_of(kind):
        names.add(module.name)
        names |= {f"{module.name}.{name}" for name in module.names()}
    if kind == "test":
        return names
    g = api.globals
    names |= {*g["functions"], *g["values"], *g["libraries"], *g["only"].get(kind, ())}
    names |= {f"{lib}.{name}" for lib, fields in g["libraries"].items() for name in fields}
    return names


def mismatches(api: Api, kind: str, sandbox: LuaSandbox, root: Any = None, module: str = "") -> list[str]:
    """What the sandbox has that the description lacks, and the reverse, as readable lines (``root``: walk
    only that table, the module ``module``)."""
    found = reachable(sandbox, root)
    real = {f"{module}.{name}" for name in found} | {module} if module else set(found)
    wanted = described(api, kind)
    return ([f"{kind}: {name} exists but has no description" for name in sorted(real - wanted)]
            + [f"{kind}: {name} is described but does not exist" for name in sorted(wanted - real)])


def test_every_reachable_name_is_described_and_every_described_name_exists() -> None:
    api = load_api()
    assert mismatches(api, "workflow.lua", workflow_sandbox()) == []
    assert mismatches(api, "function.lua", activity_sandbox()) == []
    tests = sandbox_of_a_test_file()
    assert mismatches(api, "test", tests, tests.env.test, "test") == []


def test_every_object_type_and_method_is_described() -> None:
    api = load_api()
    real: dict[str, set[str]] = {}
    for sandbox in (workflow_sandbox(), activity_sandbox()):
        real.update(object_methods(sandbox))
    wanted = {c.runtime: {m.name for m in c.methods} for c in api.classes if c.runtime}
    assert real == wanted


def test_a_shim_function_without_a_description_fails_the_check() -> None:
    """The failure mode, proven: a temporary module and a new function in a shim make the check fail."""
    api = load_api()
    sandbox = workflow_sandbox()
    sandbox.add_module("kv", sandbox.lua.execute("return {get = function(key) return nil end}"))
    sandbox.lua.execute("return function(env) env.time.tomorrow = function() end end")(sandbox.env)
    assert mismatches(api, "workflow.lua", sandbox) == ["workflow.lua: kv exists but has no description",
                                                        "workflow.lua: kv.get exists but has no description",
                                                        "workflow.lua: time.tomorrow exists but has no description"]
    # and the other way: a description of a function no sandbox has
    funcs = api.module("funcs")
    ghost = Function("teleport", (), (), "not there")
    changed = dataclasses.replace(api, modules=tuple(dataclasses.replace(m, functions=(*m.functions, ghost))
                                                     if m is funcs else m for m in api.modules))
    assert mismatches(changed, "workflow.lua", workflow_sandbox()) == [
        "workflow.lua: funcs.teleport is described but does not exist"]


# ---------------------------------------------------------------------- what is generated from it


def test_the_shipped_stubs_are_generated_from_the_description() -> None:
    assert shipped_stubs() == stub_files(), "run `python -m runner.project.stubs` to regenerate them"


def test_docs_tables_are_generated_from_the_description() -> None:
    text = (REPO / "docs" / "lua-api.md").read_text(encoding="utf-8")
    assert text.count("<!-- generated: ") >= 10
    assert render_docs(text) == text, "run `python -m runner.project.stubs` to regenerate docs/lua-api.md"
    # a hand edit inside a region is found
    edited = text.replace("| `funcs.call(id, ...)` |", "| `funcs.call(id)` |")
    assert edited != text and render_docs(edited) == text


def test_the_stubs_parse_with_flowctls_own_lua_parser() -> None:
    for name, text in stub_files().items():
        assert text.startswith("---@meta "), name
        assert analyze(text).error is None, (name, analyze(text).error)


def _annotated(text: str) -> dict[str, tuple[list[str], list[str]]]:
    """``function X(...) end`` -> its ``---@param`` and ``---@return`` lines (the words after the tag)."""
    found: dict[str, tuple[list[str], list[str]]] = {}
    params: list[str] = []
    returns: list[str] = []
    for line in text.splitlines():
        if line.startswith("---@param "):
            params.append(line.removeprefix("---@param "))
        elif line.startswith("---@return "):
            returns.append(line.removeprefix("---@return "))
        elif line.startswith("function "):
            found[line.removeprefix("function ").partition("(")[0]] = (params, returns)
            params, returns = [], []
        elif not line.startswith("---"):
            params, returns = [], []
    return found


def _expected(fn: Function) -> tuple[list[str], list[str]]:
    return ([f"{p.name}{'?' if p.optional else ''} {p.type}" for p in fn.params],
            [f"{r.type} {r.name}" for r in fn.returns])


def test_each_stub_function_has_the_params_and_returns_of_its_description() -> None:
    api = load_api()
    files = stub_files()
    for module in api.modules:
        annotated = _annotated(files[f"{module.name}.lua"])
        assert annotated == {f"{module.name}.{fn.name}": _expected(fn) for fn in module.functions}, module.name
        assert files[f"{module.name}.lua"].rstrip().endswith(f"return {module.name}")
    types = _annotated(files["flowctl.lua"])
    assert types == {f"{c.name}:{fn.name}": _expected(fn) for c in api.classes for fn in c.methods}
    assert "---@overload fun(id: EntryID, args: table): any, Error?" in files["funcs.lua"]
    for shape in ("Duration", "Time", "Channel", "Message", "Error", "WorkflowInfo"):
        assert f"---@class {shape}\n" in files["flowctl.lua"]


def test_flowctl_stubs_writes_the_stubs_and_merges_luarc(tmp_path: Path) -> None:
    (tmp_path / ".luarc.json").write_text(json.dumps({"diagnostics": {"disable": ["lowercase-global"]},
                                                      "workspace": {"library": ["vendor"]}}))
    written = write_stubs(tmp_path)
    assert sorted(p.name for p in written.files) == sorted(stub_files())
    luarc = json.loads((tmp_path / ".luarc.json").read_text())
    assert luarc["diagnostics"] == {"disable": ["lowercase-global"]}  # the user's settings stay
    assert luarc["workspace"]["library"] == ["vendor", ".editor/lua"]
    assert luarc["runtime"]["version"] == "Lua 5.4"
    assert {"io", "debug", "package", "os"} <= {k for k, v in luarc["runtime"]["builtin"].items() if v == "disable"}
    again = write_stubs(tmp_path)  # idempotent
    assert json.loads((tmp_path / ".luarc.json").read_text()) == luarc and again.files == written.files


@pytest.mark.skipif(shutil.which("lua-language-server") is None,
                    reason="lua-language-server is not on PATH: the stubs are checked structurally above instead")
def test_lua_language_server_finds_no_undefined_api_names(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "entries")
    write_stubs(tmp_path)
    logs = tmp_path / "logs"
    done = subprocess.run(["lua-language-server", "--check", str(tmp_path), "--checklevel=Warning",
                           f"--logpath={logs}"], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode in (0, 1), done.stdout + done.stderr
    report = logs / "check.json"
    problems = json.loads(report.read_text()) if report.exists() else {}
    bad = [(file, d["code"], d["message"]) for file, diagnostics in problems.items() for d in diagnostics
           if d.get("code") in ("undefined-global", "undefined-field")]
    assert bad == []

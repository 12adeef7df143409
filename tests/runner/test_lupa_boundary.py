"""docs/sandbox.md, The trust boundary: Python never runs user Lua code by accident.

lupa runs Lua for what Python does to a Lua object: ``str()`` and formatting call its
``__tostring``, indexing (``t[k]``, ``t.k``) its ``__index``, all on the interpreter's main
thread, outside any instruction budget and with the GIL held, so one looping metamethod
freezes every workflow of the worker; ``repr()`` shows a heap address, which differs
between a run and its replay. So only one audited module reads Lua objects:
``runner/sandbox/values.py`` (command fields, checked by type; runtime.py, the factory that
builds the runtime, may hold lupa too). This lint keeps it so, over every module of runner/:

1. only those two import lupa;
2. a command table (a parameter ``cmd: Any`` or ``command: Any``: what every handler receives)
   is only handed to calls (``text(cmd, "topic", ...)``, ``handler(cmd)``): never indexed, never
   an attribute base, never formatted or converted (``str``, ``repr``, f-strings, ``%``);
3. nobody else reaches the raw lupa runtime (``sandbox.lua``), which would index Lua globals or
   hand Lua a Python container (lupa passes a dict as userdata, a Python object Lua can call).
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.paths import REPO

RUNNER = REPO / "runner"
AUDITED = "runner/sandbox/values.py"
FACTORY = "runner/sandbox/runtime.py"
#: names a handler's command table goes by
COMMAND_NAMES = frozenset({"cmd", "_cmd", "command"})
#: builtins that convert or inspect their argument (lupa answers them by running Lua)
CONVERSIONS = frozenset({"str", "repr", "ascii", "format", "print", "len", "iter", "list", "tuple", "dict", "set",
                         "sorted", "int", "float", "bool", "bytes", "hash", "vars", "dir"})
#: files outside this change that still read commands directly: each entry is a debt whose list
#: must only shrink (the test fails when a listed file no longer needs its exemption)
NOT_YET_CONVERTED: dict[str, str] = {}


def _relative(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def _command_params(function: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> set[str]:
    """Its parameters that hold a command table: named so, typed ``Any`` (or untyped) as handlers are."""
    args = function.args
    return {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]
            if a.arg in COMMAND_NAMES and (a.annotation is None or ast.unparse(a.annotation) == "Any")}


def _violations(source: str, name: str) -> list[str]:
    """Every place in the module ``name`` (``runner/...py``) that breaks the rules above, as ``file:line: what``."""
    tree = ast.parse(source)
    found: list[str] = []
    parents: dict[ast.AST, ast.AST] = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    for node in ast.walk(tree):
        if name != AUDITED and name != FACTORY:
            if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "lupa" for a in node.names):
                found.append(f"{name}:{node.lineno}: imports lupa")
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "lupa":
                found.append(f"{name}:{node.lineno}: imports lupa")
            if isinstance(node, ast.Attribute) and node.attr == "lua":
                found.append(f"{name}:{node.lineno}: reaches the lupa runtime (.lua)")
        if name == AUDITED or not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        params = _command_params(node)
        for inner in ast.walk(node):
            if not (isinstance(inner, ast.Name) and inner.id in params and isinstance(inner.ctx, ast.Load)):
                continue
            parent = parents[inner]
            handed_on = (isinstance(parent, ast.Call) and inner in parent.args) or isinstance(parent, ast.keyword)
            call = parents[parent] if isinstance(parent, ast.keyword) else parent
            if handed_on and isinstance(call, ast.Call) and not (
                    isinstance(call.func, ast.Name) and call.func.id in CONVERSIONS):
                continue
            found.append(f"{name}:{inner.lineno}: uses the command table {inner.id!r} other than by handing it "
                         f"to a call ({type(parent).__name__})")
    return sorted(found, key=lambda line: int(line.split(":")[1]))


def test_only_the_audited_module_reads_lua_objects() -> None:
    found: dict[str, list[str]] = {}
    for path in sorted(RUNNER.rglob("*.py")):
        violations = _violations(path.read_text(encoding="utf-8"), _relative(path))
        if violations:
            found[_relative(path)] = violations
    unexpected = {name: lines for name, lines in found.items() if name not in NOT_YET_CONVERTED}
    assert unexpected == {}, "read Lua values through runner/sandbox/values.py (see this module's docstring)"
    assert sorted(found) == sorted(NOT_YET_CONVERTED), "a converted file: drop it from NOT_YET_CONVERTED"


def test_the_lint_catches_what_it_forbids() -> None:
    source = '''
import lupa.lua54
def handler(cmd):
    name = str(cmd["name"])
    other = cmd.topic
    text = f"{cmd}"
    fine = check(cmd, "name")
    return sandbox.lua.table_from({})
'''
    lines = [line.split(": ", 1)[1] for line in _violations(source, "runner/shims/probe.py")]
    assert lines == ["imports lupa", "uses the command table 'cmd' other than by handing it to a call (Subscript)",
                     "uses the command table 'cmd' other than by handing it to a call (Attribute)",
                     "uses the command table 'cmd' other than by handing it to a call (FormattedValue)",
                     "reaches the lupa runtime (.lua)"]

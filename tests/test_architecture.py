"""The import boundaries docs/architecture.md describes, checked on the source tree.

- ``registry/`` never imports temporalio, lupa or click (it runs in pre-commit hooks);
- ``runner/sandbox/`` never imports temporalio (the Lua trust boundary knows nothing of Temporal);
- nothing under ``runner/`` imports ``runner.testing`` except ``runner/testing`` itself;
- no two modules import each other, directly or through others (no import circles),
  counting every import: module level, inside functions, and under ``TYPE_CHECKING``.

Static checks read every import statement; the runtime probe imports each module in a fresh
interpreter (this test process has long since loaded everything) and looks at ``sys.modules``.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.support.paths import REPO

ROOT = REPO
PACKAGES = ("registry", "runner")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    found = {"cli": ROOT / "cli.py"}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


SOURCES = _sources()


def _imports(name: str, path: Path) -> Iterator[tuple[str, int]]:
    """``(imported module, line)`` for every import statement of one module, resolved to our modules."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield (sub if sub in SOURCES else base), node.lineno


def _graph() -> dict[str, set[str]]:
    return {name: {target for target, _ in _imports(name, path) if target in SOURCES and target != name}
            for name, path in SOURCES.items()}


def _offending(prefix: str, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for name, path in SOURCES.items():
        if name == prefix or name.startswith(prefix + "."):
            for target, line in _imports(name, path):
                if target.split(".")[0] in forbidden or any(target.startswith(f + ".") for f in forbidden):
                    found.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    return found


def test_registry_imports_no_runtime_dependency() -> None:
    assert _offending("registry", ("temporalio", "lupa", "click")) == []


def test_the_sandbox_imports_no_temporal() -> None:
    assert _offending("runner.sandbox", ("temporalio",)) == []
    assert _offending("runner.sandbox", ("runner.temporal", "runner.client", "runner.shims", "runner.dev")) == []


def test_only_the_test_framework_imports_the_test_framework() -> None:
    found = []
    for name, path in SOURCES.items():
        if name.startswith("runner.") and not name.startswith("runner.testing"):
            found += [f"{path.relative_to(ROOT)}:{line} imports {target}" for target, line in _imports(name, path)
                      if target == "runner.testing" or target.startswith("runner.testing.")]
    assert found == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circles() -> None:
    graph = _graph()
    # a package's __init__ re-exporting its own modules is not a circle of design: leave those edges out
    for name in graph:
        graph[name] = {t for t in graph[name] if not (name.startswith(t + ".") and t in SOURCES)}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


PROBE = """
import importlib, json, sys
from tests.support.paths import REPO
names, forbidden = json.loads(sys.argv[1])
loaded = {}
for name in names:
    importlib.import_module(name)
    hits = sorted(m for m in sys.modules if m.split(".")[0] in forbidden)
    if hits:
        loaded[name] = hits
        break
print(json.dumps(loaded))
"""


def _probe(prefix: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    names = [name for name in SOURCES if name == prefix or name.startswith(prefix + ".")]
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps([names, list(forbidden)])], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    result: dict[str, list[str]] = json.loads(done.stdout)
    return result


def test_importing_registry_loads_no_runtime_dependency() -> None:
    assert "registry.open_store" in SOURCES and "registry.lua.check" in SOURCES
    assert _probe("registry", ("temporalio", "lupa", "click")) == {}


def test_importing_the_sandbox_loads_no_temporal() -> None:
    assert "runner.sandbox.runtime" in SOURCES and "runner.sandbox.driver" in SOURCES
    assert _probe("runner.sandbox", ("temporalio",)) == {}


def _docstring_nodes(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def test_no_lua_source_hides_in_a_python_string() -> None:
    """Lua longer than five lines lives in a .lua file (editors, linters and reviewers see it as Lua)."""
    lua_line = ("local ", "function", "end", "return ", "if ", "for ", "while ")
    found = []
    for name, path in SOURCES.items():
        if not name.startswith("runner"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = _docstring_nodes(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                lines = [line.strip() for line in node.value.splitlines() if line.strip()]
                if len(lines) > 5 and sum(line.startswith(lua_line) for line in lines) > len(lines) // 2:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


def test_the_house_keeps_its_shape() -> None:
    """The sizes docs/architecture.md promises: a thin cli.py, small folders, short prelude chunks."""
    assert len((ROOT / "cli.py").read_text(encoding="utf-8").splitlines()) <= 600
    for folder in sorted(p for p in (ROOT / "runner").rglob("*") if p.is_dir() and (p / "__init__.py").exists()):
        modules = [p for p in folder.glob("*.py") if p.name != "__init__.py"]
        assert len(modules) <= 12, f"{folder.relative_to(ROOT)} holds {len(modules)} modules: split it by job"
    chunks = sorted((ROOT / "runner" / "sandbox" / "lua").glob("*.lua"))
    assert chunks and all(len(c.read_text(encoding="utf-8").splitlines()) <= 300 for c in chunks)

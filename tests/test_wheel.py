"""The built wheel ships cli.py, both packages and the schemas, and validates from anywhere.

Builds offline (no build isolation: the build backend comes from the test venv), installs
with ``--target`` into a temporary directory and runs ``flowctl validate`` from another
working directory with that target first on PYTHONPATH, so the schemas must come from
the installed package, never from the source tree or the cwd.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support.paths import REPO

ROOT = REPO


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # Build from a copy so the build's own build/ and egg-info never touch the working tree.
    source = out / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", ".ci-venv", "build", "dist", "*.egg-info", "__pycache__", ".flowctl", ".pytest_cache",
        ".mypy_cache", ".ruff_cache", ".hypothesis", "tests"))
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", str(out), str(source)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    (built,) = out.glob("flowctl-*.whl")
    return built


def test_wheel_contents(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "cli.py" in names
    assert {"registry/__init__.py", "registry/validate.py", "registry/lua/parser.py", "registry/lua/check.py",
            "runner/__init__.py", "schemas/__init__.py"} <= names
    schemas = {n for n in names if n.startswith("schemas/") and n.endswith(".json")}
    assert {f"schemas/{k}.schema.json" for k in ("entry-file", "entry", "common", "temporal.client",
                                                  "temporal.worker", "workflow.lua", "function.lua",
                                                  "function.python", "library.lua")} <= schemas
    assert not any(n.startswith(("tests/", "entries/", "bench/")) for n in names)
    # the Lua API description, the LuaLS stubs generated from it and `flowctl init`'s templates
    project = ROOT / "runner" / "project"
    shipped = {p.relative_to(ROOT).as_posix() for p in [project / "lua_api.yaml", *(project / "stubs").glob("*.lua"),
                                                          *(project / "templates").rglob("*")] if p.is_file()}
    assert {"runner/project/stubs/funcs.lua", "runner/project/templates/common/dot-gitignore",
            "runner/project/templates/order/entries/app.yaml"} <= shipped
    assert shipped <= names


def test_wheel_ships_every_lua_file(wheel: Path) -> None:
    shipped = {n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".lua")}
    in_tree = {p.relative_to(ROOT).as_posix() for p in (ROOT / "runner").rglob("*.lua")}
    assert {"runner/sandbox/lua/75_allow_list.lua", "runner/shims/time.lua", "runner/testing/test.lua"} <= in_tree
    assert shipped == in_tree


def test_installed_wheel_validates_from_another_cwd(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q",
                           "--target", str(target), str(wheel)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copytree(ROOT / "entries", elsewhere / "entries")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])}
    probe = ("import sys, schemas, registry, cli; from cli import main; "
             "print(schemas.__file__); print(registry.__file__); print(cli.__file__); "
             "from runner.sandbox import runtime; runtime.LuaSandbox(); print(runtime.__file__); "
             "sys.argv = ['flowctl', 'validate', 'entries', '--strict', '--format', 'json']; main()")
    run = subprocess.run([sys.executable, "-c", probe], cwd=elsewhere, env=env, capture_output=True, text=True,
                         check=False)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    schemas_file, registry_file, cli_file, sandbox_file, *report = run.stdout.splitlines()
    for loaded in (schemas_file, registry_file, cli_file, sandbox_file):
        assert Path(loaded).resolve().is_relative_to(target.resolve()), loaded
    assert '"ok": true' in "\n".join(report)


def test_installed_wheel_scaffolds_a_project_with_stubs(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q",
                           "--target", str(target), str(wheel)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])}
    probe = "import sys; from cli import main; sys.argv = ['flowctl', 'init', 'p', '--example', 'saga']; main()"
    run = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                         check=False)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    project = tmp_path / "p"
    for path in ("entries/app.yaml", "entries/order_saga_test.lua", ".gitignore", ".vscode/settings.json",
                 ".editor/lua/funcs.lua", ".editor/schemas/catalog.json", ".luarc.json"):
        assert (project / path).is_file(), path

"""``registry`` stays light: importing it, or any module under it, never loads temporalio, lupa or click.

Pre-commit hooks and editors run ``flowctl validate`` through ``registry``; the heavy runtime
dependencies belong to ``runner`` and ``cli`` only. Checked in a fresh interpreter, since
this test process has long since imported all three.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import registry

FORBIDDEN = ("temporalio", "lupa", "click")

PROBE = """
import importlib, json, pkgutil, sys
forbidden = {forbidden!r}
import registry
names = ["registry"] + sorted(m.name for m in pkgutil.walk_packages(registry.__path__, "registry."))
report = {{"modules": names, "loaded": {{}}, "failed": {{}}}}
for name in names:
    try:
        importlib.import_module(name)
    except ImportError as exc:
        report["failed"][name] = [type(exc).__name__, getattr(exc, "name", None) or "", str(exc)]
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in forbidden)
    if loaded:
        report["loaded"][name] = loaded
        break
print(json.dumps(report))
"""


def probe() -> dict[str, object]:
    code = PROBE.format(forbidden=FORBIDDEN)
    repo = Path(registry.__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_registry_modules_do_not_import_runtime_dependencies() -> None:
    report = probe()
    modules = report["modules"]
    assert isinstance(modules, list)
    for expected in ("registry.store", "registry.sqlite_store", "registry.plan", "registry.publish",
                     "registry.revision", "registry.sqlite_migrations"):
        assert expected in modules
    assert report["loaded"] == {}, f"importing these loaded {', '.join(FORBIDDEN)}: {report['loaded']}"


def test_every_registry_module_imports() -> None:
    report = probe()
    assert report["failed"] == {}
    assert "registry.validate" in report["modules"] and "registry.lua.check" in report["modules"]

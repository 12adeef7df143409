"""``flowctl validate|diff|apply|registry show`` with function.python handlers, through click's CliRunner.

A handler's module is part of its entry's revision: editing it makes ``diff`` report the
entry as changed, and ``--python-path DIR`` (as for ``flowctl worker``) says where it is found.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import cli
from tests.support.projects import PYTHON_HANDLER, PYTHON_HANDLER_ENTRY_FILE

ENTRY_FILE = PYTHON_HANDLER_ENTRY_FILE.replace("MODULE", "payments")
HANDLER = PYTHON_HANDLER


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with ``entries/app.yaml`` and its handler in ``entries/payments/handlers.py``."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FLOWCTL_REGISTRY", raising=False)
    monkeypatch.delenv("FLOWCTL_ENTRIES", raising=False)
    (tmp_path / "entries" / "payments").mkdir(parents=True)
    (tmp_path / "entries" / "app.yaml").write_text(ENTRY_FILE)
    (tmp_path / "entries" / "payments" / "handlers.py").write_text(HANDLER)
    return tmp_path


def run(*args: str) -> Result:
    return CliRunner().invoke(cli.main, list(args), catch_exceptions=False)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_diff_reports_an_edited_handler_and_registry_show_names_the_applied_file(project: Path) -> None:
    module = project / "entries" / "payments" / "handlers.py"
    created = run("diff")
    assert created.exit_code == 1, created.output
    assert "+ app:charge (function.python) created" in created.stdout
    assert '    +def charge(order):' in created.stdout.splitlines()  # the handler's source is in the diff
    applied = run("apply")
    assert applied.exit_code == 0, applied.output
    assert run("diff").exit_code == 0
    old = sha256(module)

    module.write_text(HANDLER.replace('order["total"]', 'order["total"] * 100'))
    changed = run("diff")
    assert changed.exit_code == 1, changed.output
    assert "~ app:charge (function.python) changed" in changed.stdout
    assert f"    handler payments/handlers.py sha256 {old[:12]} -> {sha256(module)[:12]}" in changed.stdout
    assert '    +    return {"charged": order["total"] * 100}' in changed.stdout.splitlines()
    assert "Plan: 0 to create, 1 to change, 0 to delete, 2 unchanged." in changed.stdout

    shown = run("registry", "show", "app:charge")
    assert shown.exit_code == 0, shown.output
    assert f"handler:  payments.handlers:charge -> payments/handlers.py sha256 {old}" in shown.stdout
    body = json.loads(run("registry", "show", "app:charge", "--json").stdout)
    assert body["handler_file"] == {"path": "payments/handlers.py", "sha256": old}

    assert run("apply").exit_code == 0
    body = json.loads(run("registry", "show", "app:charge", "--json").stdout)
    assert body["handler_file"]["sha256"] == sha256(module)


def test_validate_warns_when_the_handler_is_not_on_the_python_path(project: Path) -> None:
    (project / "entries" / "payments" / "handlers.py").unlink()
    result = run("validate", "entries", "--no-cache")
    assert result.exit_code == 0, result.output  # a warning: the worker may still import it
    assert "FC210 warning: handler module 'payments.handlers' is neither on the python path (entries)" \
        in result.stdout
    assert "--python-path" in result.stdout
    assert run("validate", "entries", "--no-cache", "--strict").exit_code == 1


def test_python_path_option_of_diff_and_apply(project: Path) -> None:
    """``--python-path DIR`` (repeatable) replaces the entries directory as where handlers are found."""
    src = project / "src" / "payments"
    src.mkdir(parents=True)
    (src / "handlers.py").write_text(HANDLER.replace("charged", "charged_from_src"))
    assert run("apply").exit_code == 0
    moved = run("diff", "--python-path", "src")
    assert moved.exit_code == 1, moved.output
    assert "~ app:charge (function.python) changed" in moved.stdout
    assert "charged_from_src" in moved.stdout
    applied = run("apply", "--python-path", "src", "--python-path", "entries")
    assert applied.exit_code == 0, applied.output
    assert json.loads(run("registry", "show", "app:charge", "--json").stdout)["handler_file"]["sha256"] == \
        sha256(src / "handlers.py")
    assert run("diff", "--python-path", "src").exit_code == 0

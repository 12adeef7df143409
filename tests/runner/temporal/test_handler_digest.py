"""The worker warns when the function.python handler it imported is not the one the revision recorded.

The dynamic activity is called in-process (temporalio's ActivityEnvironment): the test is about
what the worker compares and logs, not about Temporal delivering the task.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.common import RawValue
from temporalio.testing import ActivityEnvironment

from registry.loader import load_project
from registry.revision import build_revisions
from runner.revision_source import ProjectRevisionSource
from runner.temporal.activities import ActivityRunner
from tests.support.projects import PYTHON_HANDLER, PYTHON_HANDLER_ENTRY_FILE

ENTRY_FILE = PYTHON_HANDLER_ENTRY_FILE
HANDLER = PYTHON_HANDLER


def write_project(root: Path, module: str, handler: str = HANDLER) -> Path:
    """An entries directory whose handler lives in ``entries/<module>/handlers.py``."""
    (root / module).mkdir(parents=True)
    (root / "app.yaml").write_text(ENTRY_FILE.replace("MODULE", module))
    (root / module / "__init__.py").write_text("")
    (root / module / "handlers.py").write_text(handler)
    return root


def unique_module() -> str:
    """A package name no other test imported (the worker's imports live in sys.modules for the session)."""
    return f"digest_handlers_{uuid.uuid4().hex[:8]}"


async def call(runner: ActivityRunner, order: dict[str, Any]) -> Any:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(ActivityEnvironment.default_info(), activity_type="app:charge")
    return await env.run(runner.run, [RawValue(env.payload_converter.to_payload(order))])


def digest_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and r.name == "runner.temporal.activities"]


async def test_a_handler_edited_after_it_was_imported_is_reported_once_per_revision(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    module = unique_module()
    entries = write_project(tmp_path / "entries", module)
    monkeypatch.syspath_prepend(str(entries))  # what `flowctl worker --python-path entries` does
    source = ProjectRevisionSource.from_paths([entries])
    applied = source.activity("app:charge")
    runner = ActivityRunner(source)
    caplog.set_level(logging.WARNING)

    assert await call(runner, {"total": 5}) == {"charged": 5}
    assert digest_warnings(caplog) == [], "the imported handler is the applied one"

    # the handler is edited and applied while the worker keeps the old module imported
    handler_file = entries / module / "handlers.py"
    handler_file.write_text(HANDLER.replace('order["total"]', 'order["total"] * 100'))
    edited = build_revisions(load_project([entries]))["app:charge"]
    assert edited.digest != applied.digest
    source.add(edited)

    assert await call(runner, {"total": 5}) == {"charged": 5}, "Python keeps running the module it imported"
    assert await call(runner, {"total": 6}) == {"charged": 6}
    warnings = digest_warnings(caplog)
    assert len(warnings) == 1, warnings
    assert applied.handler_file is not None and edited.handler_file is not None
    message = warnings[0]
    assert message.startswith("app:charge: handler module ")
    assert str(handler_file) in message  # the file the worker imported
    assert f"sha256 {applied.handler_file.sha256[:12]}" in message  # what it imported (the old code)
    assert f"revision {edited.short_digest}" in message
    assert f"applied with {module}/handlers.py (sha256 {edited.handler_file.sha256[:12]})" in message
    assert "restart the worker" in message


async def test_a_worker_importing_from_another_python_path_is_reported(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    module = unique_module()
    entries = write_project(tmp_path / "entries", module)
    deployed = write_project(tmp_path / "deployed", module, HANDLER.replace("charged", "paid"))
    monkeypatch.syspath_prepend(str(deployed))  # the worker's --python-path is another directory
    source = ProjectRevisionSource.from_paths([entries])
    caplog.set_level(logging.WARNING)

    assert await call(ActivityRunner(source), {"total": 5}) == {"paid": 5}
    warnings = digest_warnings(caplog)
    assert len(warnings) == 1, warnings
    deployed_sha = hashlib.sha256((deployed / module / "handlers.py").read_bytes()).hexdigest()
    assert f"{deployed / module / 'handlers.py'} (sha256 {deployed_sha[:12]})" in warnings[0]


async def test_no_warning_when_the_revision_recorded_no_handler_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    module = unique_module()
    entries = write_project(tmp_path / "entries", module)
    elsewhere = write_project(tmp_path / "elsewhere", module, HANDLER.replace("charged", "paid"))
    (entries / module / "handlers.py").unlink()  # not on the python path when the revision is built
    monkeypatch.syspath_prepend(str(elsewhere))
    source = ProjectRevisionSource.from_paths([entries])
    assert source.activity("app:charge").handler_file is None
    caplog.set_level(logging.WARNING)

    assert await call(ActivityRunner(source), {"total": 5}) == {"paid": 5}
    assert digest_warnings(caplog) == []  # nothing recorded: nothing to compare

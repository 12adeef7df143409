"""Data-driven command cases: tests/cases/commands/*/case.yaml, each one command and the answer it must give.

A case directory holds its files (entries, registries...) and ``case.yaml``::

    args: [registry, show, app:x, --revision, ""]   # flowctl's arguments; run in a copy of the directory
    env: {FLOWCTL_REGISTRY: ""}                    # optional: extra environment
    setup: [[apply, --entries, .]]                 # optional: commands run first, each must exit 0
    server: true                                   # optional: ``{address}`` in args/setup/env is a real dev server
    exit: 1                                        # the exit status
    stderr: "error: --registry is empty"           # optional: text the output must contain (str or list)
    stdout: "..."                                  # optional: text stdout must contain (str or list)

Every case also asserts flowctl never answers with a traceback or an ``internal error`` (exit 2 is for
flowctl's own bugs and for usage errors: a case expecting 2 says so).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

import cli
from tests.support.paths import REPO

COMMANDS = REPO / "tests" / "cases" / "commands"
CASES = sorted(p for p in COMMANDS.iterdir() if (p / "case.yaml").is_file())


def _load(case: Path) -> dict[str, Any]:
    spec = yaml.safe_load((case / "case.yaml").read_text())
    assert isinstance(spec, dict) and isinstance(spec.get("args"), list) and "exit" in spec, case
    return spec


def _params() -> list[Any]:
    marks = {True: [pytest.mark.temporal], False: []}
    return [pytest.param(case, id=case.name, marks=marks[bool(_load(case).get("server"))]) for case in CASES]


def _expanded(args: list[Any], request: pytest.FixtureRequest, server: bool) -> list[str]:
    texts = [str(arg) for arg in args]
    if not server:
        return texts
    address = request.getfixturevalue("dev_server").address
    return [text.replace("{address}", address) for text in texts]


def _texts(value: Any) -> list[str]:
    return [] if value is None else [value] if isinstance(value, str) else list(value)


@pytest.mark.parametrize("case", _params())
def test_command_case(case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                      request: pytest.FixtureRequest) -> None:
    spec = _load(case)
    work = tmp_path / case.name
    shutil.copytree(case, work)
    monkeypatch.chdir(work)
    server = bool(spec.get("server"))
    given = spec.get("env") or {}
    env = dict(zip(map(str, given), _expanded(list(given.values()), request, server), strict=True))
    runner = CliRunner()
    for step in spec.get("setup") or []:
        done = runner.invoke(cli.main, _expanded(step, request, server), env=env, catch_exceptions=False)
        assert done.exit_code == 0, f"setup {step}: {done.output}"
    result = runner.invoke(cli.main, _expanded(spec["args"], request, server), env=env,
                           input=spec.get("stdin"), catch_exceptions=False)
    everything = result.stdout + result.stderr
    assert "Traceback" not in everything and "internal error" not in everything, everything
    assert result.exit_code == spec["exit"], everything
    for text in _texts(spec.get("stderr")):
        assert text in result.stderr, result.stderr
    for text in _texts(spec.get("stdout")):
        assert text in result.stdout, result.stdout


def test_there_are_command_cases() -> None:
    assert len(CASES) >= 50

"""Output into a closed pipe (``flowctl registry list | head -1``) ends the command quietly, exit 141.

Real processes, a real pipe whose reading end is closed before flowctl writes: what ``head``
does once it has its line. No ``internal error``, no traceback, nothing on stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import cli
from runner.console import BROKEN_PIPE_EXIT
from tests.support.paths import REPO
from tests.support.projects import write_project


def into_closed_pipe(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``flowctl ARGS`` with stdout a pipe nobody reads any more."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run([sys.executable, "-m", "cli", *args], cwd=cwd, stdout=write, stderr=subprocess.PIPE,
                              text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO), **env})
    finally:
        os.close(write)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pipe")
    write_project(root)
    done = CliRunner().invoke(cli.main, ["apply", "--entries", str(root / "entries"), "--registry",
                                         str(root / "registry.db"), "--no-gate", "--reason", "test"])
    assert done.exit_code == 0, done.output
    return root


@pytest.mark.parametrize("args", [["registry", "list"], ["registry", "history"], ["registry", "show", "app:money"],
                                  ["validate", "entries", "--format", "json"]], ids=" ".join)
def test_a_closed_pipe_exits_quietly(project: Path, args: list[str]) -> None:
    done = into_closed_pipe(args, project, FLOWCTL_REGISTRY=str(project / "registry.db"))
    assert (done.returncode, done.stderr) == (BROKEN_PIPE_EXIT, ""), done.stderr


def test_describe_into_a_closed_pipe(project: Path, dev_server: Any) -> None:
    started = CliRunner().invoke(cli.main, ["run", "app:order_workflow", "--id", "pipe-describe", "--input", "{}"],
                                 env={"FLOWCTL_REGISTRY": str(project / "registry.db"),
                                      "TEMPORAL_ADDRESS": dev_server.address})
    assert started.exit_code == 0, started.output
    done = into_closed_pipe(["describe", "pipe-describe"], project, FLOWCTL_REGISTRY=str(project / "registry.db"),
                            TEMPORAL_ADDRESS=dev_server.address)
    assert (done.returncode, done.stderr) == (BROKEN_PIPE_EXIT, ""), done.stderr

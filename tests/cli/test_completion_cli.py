"""`flowctl completion bash|zsh|fish` (click's shell completion) and entry IDs completed from the registry."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from tests.support.paths import REPO

#: the console script, as the shell calls it on TAB (``python -m cli`` would be named ``cli.py``)
FLOWCTL = [sys.executable, "-c", "from cli import main; main(prog_name='flowctl')"]


@pytest.mark.parametrize(("shell", "marker"), [("bash", "complete -o nosort -F _flowctl_completion flowctl"),
                                               ("zsh", "#compdef flowctl"),
                                               ("fish", "complete --no-files --command flowctl")])
def test_completion_prints_the_shells_script(shell: str, marker: str) -> None:
    done = CliRunner().invoke(main, ["completion", shell])
    assert done.exit_code == 0, done.output
    assert marker in done.output and "_FLOWCTL_COMPLETE" in done.output


def test_an_unknown_shell_is_a_usage_error() -> None:
    done = CliRunner().invoke(main, ["completion", "tcsh"])
    assert done.exit_code == 2 and "tcsh" in done.output


def complete(cwd: Path, words: str, registry: str | None = None) -> list[str]:
    """What bash completion offers for the last word of ``words`` (a real subprocess, as the shell runs it)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "_FLOWCTL_COMPLETE": "bash_complete", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split(" ")) - 1)}
    env.pop("FLOWCTL_REGISTRY", None)
    if registry:
        env["FLOWCTL_REGISTRY"] = registry
    done = subprocess.run(FLOWCTL, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return [line.partition(",")[2] for line in done.stdout.splitlines() if line]


def test_entry_ids_complete_from_the_registry(tmp_path: Path) -> None:
    registry = tmp_path / "reg.db"
    assert CliRunner().invoke(main, ["init", str(tmp_path / "p"), "--example", "saga"]).exit_code == 0
    applied = CliRunner().invoke(main, ["apply", "--entries", str(tmp_path / "p" / "entries"), "--registry",
                                        str(registry), "--no-gate", "--reason", "test"])
    assert applied.exit_code == 0, applied.output
    shown = complete(tmp_path, f"flowctl registry show --registry {registry} app:re")
    assert shown == ["app:release_inventory", "app:reserve_inventory"]
    # `run` completes workflow entries only; the registry may come from the environment too
    runnable = complete(tmp_path, "flowctl run app:", registry=str(registry))
    assert runnable == ["app:order_saga"]


def test_completion_never_fails_and_never_creates_a_registry(tmp_path: Path) -> None:
    assert complete(tmp_path, "flowctl registry show ap") == []  # no .flowctl/registry.db here
    assert not (tmp_path / ".flowctl").exists()
    (tmp_path / "broken.db").write_text("not a database")
    assert complete(tmp_path, f"flowctl run --registry {tmp_path / 'broken.db'} ap") == []


def test_paths_complete_as_files(tmp_path: Path) -> None:
    (tmp_path / "entries").mkdir()
    offered = subprocess.run(FLOWCTL, cwd=tmp_path, capture_output=True, text=True, timeout=60,
                             env={**os.environ, "PYTHONPATH": str(REPO), "_FLOWCTL_COMPLETE": "bash_complete",
                                  "COMP_WORDS": "flowctl validate ent", "COMP_CWORD": "2"}, check=False)
    assert offered.stdout.splitlines() == ["file,ent"]  # bash completes the path itself

"""A run's command sequence, as golden files keep it, and the golden files themselves.

A golden file (``golden/<name>.txt`` beside the test file) lists the commands the
workflow issued, one per line, in history order — ``activity app:charge_payment``,
``timer 24h``, ``complete`` — with nothing that changes between runs (no ids, no
times). ``flowctl test --update-golden`` rewrites them; a mismatch fails the test with a
unified diff. Lines starting with ``#`` are comments.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

__all__ = ["GOLDEN_DIR", "check_golden", "golden_path", "text_diff"]

GOLDEN_DIR = "golden"
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_HEADER = ("# flowctl golden history: the commands of one test run, in order.\n"
           "# Regenerate with `flowctl test --update-golden` after an intended change.\n")


def golden_path(test_file: Path, name: str) -> Path:
    """``golden/<name>.txt`` beside the test file; the name must be a plain file name."""
    if not _NAME.match(name):
        raise ValueError(f"test.golden: {name!r} is not a usable name; use letters, digits, '_', '-' or '.'")
    return test_file.parent / GOLDEN_DIR / f"{name}.txt"


def read_golden(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return [line.rstrip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def write_golden(path: Path, commands: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_HEADER + "".join(f"{line}\n" for line in commands), encoding="utf-8")


def check_golden(path: Path, commands: list[str], *, update: bool,
                 display: str | None = None) -> tuple[str | None, str | None]:
    """``(problem, diff)``: None, None when the commands match (or the file was (re)written)."""
    shown = display or str(path)
    if update:
        if not path.exists() or read_golden(path) != commands:
            write_golden(path, commands)
        return None, None
    if not path.exists():
        return (f"golden file {shown} does not exist; create it with `flowctl test --update-golden`", None)
    try:
        expected = read_golden(path)
    except (OSError, UnicodeDecodeError) as exc:
        return f"cannot read golden file {shown}: {exc}", None
    if expected == commands:
        return None, None
    diff = "\n".join(difflib.unified_diff(expected, commands, fromfile=shown, tofile="this run", lineterm=""))
    return (f"the commands differ from golden file {shown} (- golden, + this run); if the change is intended, "
            "rerun with --update-golden", diff)


def text_diff(expected: str, actual: str) -> str:
    """A unified diff of two renderings (- expected, + actual)."""
    return "\n".join(difflib.unified_diff(expected.splitlines(), actual.splitlines(), fromfile="expected",
                                          tofile="actual", lineterm=""))


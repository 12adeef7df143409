"""Finding Lua tests: ``*_test.lua`` files beside the entries, and the ``test_*`` functions in them."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from registry.diagnostics import display_path
from registry.errors import FlowError
from registry.loader import SKIPPED_DIRS
from runner.testing.golden import GOLDEN_DIR

__all__ = ["TEST_SUFFIX", "TestFile", "TestId", "discover", "entries_dir_of", "matches"]

TEST_SUFFIX = "_test.lua"
#: directories never searched: those never searched for entries, and golden files
_SKIP_DIRS = SKIPPED_DIRS | {GOLDEN_DIR}


@dataclass(frozen=True)
class TestId:
    """One test function: ``entries/order_workflow_test.lua::test_timer``."""

    __test__ = False  # not a pytest test class

    file: Path
    name: str

    def display(self) -> str:
        return f"{display_path(self.file)}::{self.name}"


@dataclass
class TestFile:
    """A test file and the entries directory its tests run against."""

    __test__ = False  # not a pytest test class

    path: Path
    entries_dir: Path
    tests: list[str] = field(default_factory=list)
    #: set when the file cannot be loaded (syntax error, error at load time): one failure for the file
    error: str | None = None
    error_where: str | None = None


def entries_dir_of(test_file: Path) -> Path:
    """The nearest directory at or above the test file holding entry YAML files."""
    start = test_file.resolve().parent
    for directory in (start, *start.parents):
        if any(directory.glob("*.yaml")) or any(directory.glob("*.yml")):
            return directory
    raise FlowError(f"{display_path(test_file)}: no entry YAML files in its directory or above",
                    hint="put *_test.lua files beside the entries they test (e.g. entries/order_test.lua)")


def _walk(root: Path) -> Iterable[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith(TEST_SUFFIX):
                yield Path(dirpath) / name


def discover(paths: Sequence[Path | str], *, entries: Path | None = None) -> list[TestFile]:
    """Every ``*_test.lua`` under ``paths`` (directories or files), with its entries directory."""
    found: dict[Path, TestFile] = {}
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise FlowError(f"{raw}: no such file or directory",
                            hint="pass entry directories or *_test.lua files (default: entries)")
        files = [path] if path.is_file() else list(_walk(path))
        if path.is_file() and not path.name.endswith(TEST_SUFFIX):
            raise FlowError(f"{raw} is not a Lua test file (its name must end in {TEST_SUFFIX})",
                            hint="name test files like order_workflow_test.lua")
        for file in files:
            resolved = file.resolve()
            if resolved not in found:
                found[resolved] = TestFile(path=file, entries_dir=entries or entries_dir_of(file))
    return list(found.values())


def matches(test: TestId, pattern: str | None) -> bool:
    """pytest-like ``-k``: a substring of ``file::name`` (or a glob with * / ?), case-insensitive."""
    if not pattern:
        return True
    text = test.display().lower()
    wanted = pattern.lower()
    if any(c in wanted for c in "*?["):
        return fnmatch.fnmatch(text, wanted) or fnmatch.fnmatch(test.name.lower(), wanted)
    return wanted in text

"""Diagnostics: one problem found in the user's files, with where, what and how to fix it."""

from __future__ import annotations

import enum
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True)
class Diagnostic:
    """A located problem. ``path`` is the JSON path inside the file (``entries[3].meta``)."""

    file: str
    line: int
    col: int
    code: str
    message: str
    hint: str = ""
    path: str = ""
    severity: Severity = field(default=Severity.ERROR, compare=False)

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def location(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def to_dict(self) -> dict[str, object]:
        return {
            "file": printable(self.file),
            "line": self.line,
            "col": self.col,
            "path": printable(self.path),
            "code": self.code,
            "severity": str(self.severity),
            "message": printable(self.message),
            "hint": printable(self.hint),
        }


def printable(text: str) -> str:
    """``text`` as valid UTF-8: bytes of a non-UTF-8 file name (surrogate escapes) shown as ``\\xff``."""
    if text.isascii():
        return text
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that no file name byte produced
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def display_path(path: Path) -> str:
    """A path as users should read it: relative to the working directory when it is below it."""
    absolute = os.path.abspath(path)  # no symlink resolution: shown as the user named it
    cwd = _resolved(os.getcwd())
    for base in (os.getcwd(), cwd):
        if absolute == base:
            return "."
        if absolute.startswith(base.rstrip(os.sep) + os.sep):
            return absolute[len(base.rstrip(os.sep)) + 1:]
    resolved = _resolved(absolute)
    if resolved.startswith(cwd.rstrip(os.sep) + os.sep):
        return resolved[len(cwd.rstrip(os.sep)) + 1:]
    return str(path)


@functools.lru_cache(maxsize=256)
def _resolved(path: str) -> str:
    return os.path.realpath(path)


def json_path(parts: tuple[str | int, ...]) -> str:
    """Render ``("entries", 3, "meta")`` as ``entries[3].meta``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif out:
            out += f".{part}"
        else:
            out = str(part)
    return out

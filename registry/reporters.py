"""Render diagnostics for people (text), machines (json) and GitHub Actions (annotations)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Literal

from registry.diagnostics import Diagnostic, Severity

Format = Literal["text", "json", "github"]
FORMATS: tuple[Format, ...] = ("text", "json", "github")


def summary(diagnostics: Sequence[Diagnostic], *, files: int | None = None,
            entries: int | None = None) -> str:
    """One line: ``2 errors, 1 warning in 3 files (12 entries)`` or ``ok: …``."""
    errors = sum(d.severity is Severity.ERROR for d in diagnostics)
    warnings = len(diagnostics) - errors
    scope = ""
    if files is not None:
        scope = f" in {_plural(files, 'file')}"
        if entries is not None:
            scope += f" ({_plural(entries, 'entry', 'entries')})"
    if not diagnostics:
        return f"ok: no problems{scope}"
    return f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')}{scope}"


def render(diagnostics: Sequence[Diagnostic], fmt: Format = "text", *, files: int | None = None,
           entries: int | None = None) -> str:
    """All diagnostics in the given format, ending with a newline."""
    if fmt == "json":
        return _render_json(diagnostics, files, entries)
    if fmt == "github":
        return _render_github(diagnostics, files, entries)
    if fmt == "text":
        return _render_text(diagnostics, files, entries)
    raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


def _render_text(diagnostics: Sequence[Diagnostic], files: int | None, entries: int | None) -> str:
    lines = []
    for d in diagnostics:
        lines.append(f"{d.location()}: {d.code} {d.severity}: {d.message}")
        if d.path:
            lines.append(f"  at: {d.path}")
        if d.hint:
            lines.append(f"  hint: {d.hint}")
    lines.append(summary(diagnostics, files=files, entries=entries))
    return "\n".join(lines) + "\n"


def _render_json(diagnostics: Sequence[Diagnostic], files: int | None, entries: int | None) -> str:
    errors = sum(d.severity is Severity.ERROR for d in diagnostics)
    body = {
        "ok": errors == 0,
        "summary": {"errors": errors, "warnings": len(diagnostics) - errors, "files": files,
                    "entries": entries},
        "diagnostics": [d.to_dict() for d in diagnostics],
    }
    return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


def _escape_data(text: str) -> str:
    # GitHub workflow-command escaping: https://github.com/actions/toolkit (core/src/command.ts)
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _render_github(diagnostics: Sequence[Diagnostic], files: int | None, entries: int | None) -> str:
    lines = []
    for d in diagnostics:
        level = "error" if d.severity is Severity.ERROR else "warning"
        message = d.message + (f"\nhint: {d.hint}" if d.hint else "")
        lines.append(
            f"::{level} file={_escape_property(d.file)},line={d.line},col={d.col},"
            f"title={_escape_property(d.code)}::{_escape_data(message)}"
        )
    lines.append(summary(diagnostics, files=files, entries=entries))
    return "\n".join(lines) + "\n"


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"

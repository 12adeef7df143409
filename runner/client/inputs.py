"""Values given on the command line: ``--input``/``--context`` JSON, ``--message``/``--option`` specs,
``--python-path`` directories.

Each error says which option was wrong and how to write it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from registry.errors import FlowError
from runner.client.start import NO_INPUT

__all__ = ["parse_context", "parse_input", "parse_spec", "python_paths_or_entries", "read_json"]


def parse_input(text: str | None, option: str = "--input") -> Any:
    """``--input`` (or ``option``): JSON text, or ``@path`` to a JSON file; None means no input."""
    if text is None:
        return NO_INPUT
    example = '{"tenant": "t-1"}' if option == "--context" else '{"id": "o-1", "total": 42}'
    return read_json(text, option, example)


def read_json(text: str, option: str, example: str) -> Any:
    """JSON text given to ``option``, or ``@path`` to a JSON file; ``example`` shows a good value in the hint."""
    raw = text
    if text.startswith("@"):
        try:
            with open(text[1:], encoding="utf-8") as handle:
                raw = handle.read()
        except OSError as exc:
            raise FlowError(f"cannot read {option} file {text[1:]}: {exc.strerror or exc}",
                            hint=f"pass {option} @path/to/file.json with a readable file") from None
    try:
        return _loads(raw, option)
    except json.JSONDecodeError as exc:
        raise FlowError(f"{option} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                        hint=f"quote it for the shell, e.g. {option} '{example}'") from None


def parse_context(text: str | None) -> dict[str, Any] | None:
    """``--context``: a JSON object (or ``@path`` to one) of values for ``ctx.get`` / ``ctx.all``."""
    context = parse_input(text, "--context") if text else None
    if context is not None and not isinstance(context, dict):
        raise FlowError("--context must be a JSON object", hint='e.g. --context \'{"tenant": "t-1"}\'')
    return context


def parse_spec(spec: str, option: str, *, required: bool) -> tuple[str, Any]:
    """``KEY=JSON`` (JSON value; a bare word is taken as a string) or, when allowed, just ``KEY``."""
    key, sep, raw = spec.partition("=")
    if not key or (required and not sep):
        raise FlowError(f"{option} {spec!r} is not KEY=VALUE", hint=f'e.g. {option} name=\'{{"a": 1}}\'')
    if not sep:
        return key, None
    try:
        return key, _loads(raw, option)
    except json.JSONDecodeError:
        return key, raw


def _loads(raw: str, option: str) -> Any:
    """``json.loads``, with JSON nested past Python's recursion limit a FlowError (was a RecursionError)."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise FlowError(f"{option} is nested too deeply to read (JSON arrays/objects nested about 1,000 levels)",
                        hint=f"flatten the value given to {option}") from None


def python_paths_or_entries(explicit: tuple[str, ...], entries_dir: Path | None = None) -> list[Path]:
    """``--python-path``, else the entries directory when it is one (``entries_dir``, FLOWCTL_ENTRIES or entries)."""
    fallback = entries_dir if entries_dir and entries_dir.is_dir() else os.environ.get("FLOWCTL_ENTRIES", "entries")
    return [Path(p) for p in explicit or ((fallback,) if os.path.isdir(fallback) else ())]

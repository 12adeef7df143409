"""An entry's own sandbox limits (``limits: {memory: 64MiB, instructions_per_task: 50_000_000}``), read and checked.

``workflow.lua`` and ``function.lua`` entries may ask for their Lua heap (``memory``: a size such
as ``64MiB``, ``512KiB``, or an integer of bytes) and their instruction budget per workflow task /
activity attempt (``instructions_per_task``). The schema only says the types; :func:`check_limits`
is the schema stage's extra check of the values (FC143-FC145), and the runner reads them with
:func:`sandbox_limits` (docs/sandbox.md, Limits). How far up an entry may go is the worker's
business (``flowctl worker --max-memory --max-instructions``), which validate cannot know.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from registry.diagnostics import Diagnostic
from registry.yamlfile import JsonPath, YamlDocument

__all__ = ["INSTRUCTIONS_RANGE", "LIMIT_KINDS", "MEMORY_RANGE", "SizeError", "check_limits", "format_size",
           "memory_size", "parse_size", "sandbox_limits", "size_text"]

#: The kinds whose ``limits:`` may set ``memory`` and ``instructions_per_task``.
LIMIT_KINDS = ("workflow.lua", "function.lua")
#: Bytes of Lua heap an entry may ask for: an empty runtime holds ~100 KiB; 16 GiB is more than a worker has.
MEMORY_RANGE = (256 << 10, 16 << 30)
#: Instructions per workflow task / activity attempt: 1,000 is a few lines; 10^11 is minutes of pure Lua.
INSTRUCTIONS_RANGE = (1_000, 100_000_000_000)

_UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
_DECIMAL = {"K": "KiB", "KB": "KiB", "k": "KiB", "kB": "KiB", "M": "MiB", "MB": "MiB", "G": "GiB", "GB": "GiB"}
_SIZE = re.compile(r"([0-9][0-9_]*)\s*([A-Za-z]*)")


class SizeError(ValueError):
    """A text that is not a size; the message says what to write instead."""


def parse_size(value: Any) -> int:
    """Bytes of a size: an integer, or text like ``64MiB``, ``512KiB``, ``1GiB``, ``4096B`` (SizeError if not)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str):
        raise SizeError(f"{value!r} is not a size")
    match = _SIZE.fullmatch(value.strip())
    if match is None or (match.group(2) or "B") not in _UNITS:
        unit = match.group(2) if match else ""
        better = f"{match.group(1)}{_DECIMAL[unit]}" if match and unit in _DECIMAL else "64MiB"
        raise SizeError(f"{value!r} is not a size (write e.g. {better}: units B, KiB, MiB, GiB)")
    return int(match.group(1).replace("_", "")) * _UNITS[match.group(2) or "B"]


def memory_size(value: Any) -> int:
    """Bytes of a heap size given on a command line (``--max-memory``): a size in MEMORY_RANGE, else SizeError."""
    size = parse_size(value)
    low, high = MEMORY_RANGE
    if not low <= size <= high:
        raise SizeError(f"{value!r} is out of range ({format_size(low)} to {format_size(high)})")
    return size


def size_text(size: int) -> str:
    """A size as :func:`parse_size` reads it, in the largest unit that divides it: ``128MiB``, ``1536KiB``."""
    for unit in ("GiB", "MiB", "KiB"):
        if size and size % _UNITS[unit] == 0:
            return f"{size // _UNITS[unit]}{unit}"
    return str(size)


def format_size(size: int) -> str:
    """``64 MiB``, ``512 KiB``, ``1.5 GiB``, ``300 bytes``: a size as people read it."""
    for unit in ("GiB", "MiB", "KiB"):
        scale = _UNITS[unit]
        if size >= scale:
            return f"{size / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} bytes"


def sandbox_limits(limits: Mapping[str, Any] | None) -> dict[str, int]:
    """``{"memory": bytes, "instructions": n}`` as far as ``limits`` (an entry's, validated) sets them."""
    asked: dict[str, int] = {}
    if not isinstance(limits, Mapping):
        return asked
    if limits.get("memory") is not None:
        asked["memory"] = parse_size(limits["memory"])
    instructions = limits.get("instructions_per_task")
    if isinstance(instructions, int) and not isinstance(instructions, bool):
        asked["instructions"] = instructions
    return asked


def check_limits(doc: YamlDocument, where: JsonPath, item: Mapping[str, Any]) -> Iterator[Diagnostic]:
    """FC143-FC145: an entry's ``limits.memory`` / ``limits.instructions_per_task`` it cannot have."""
    limits = item.get("limits")
    if item.get("kind") not in LIMIT_KINDS or not isinstance(limits, Mapping):
        return
    memory = limits.get("memory")
    if isinstance(memory, int | str) and not isinstance(memory, bool):
        low, high = MEMORY_RANGE
        try:
            size = parse_size(memory)
        except SizeError as exc:
            yield doc.diagnostic((*where, "limits", "memory"), "FC143", f"`memory`: {exc}",
                                 "write a size such as 64MiB, 512KiB or 1GiB, or an integer of bytes")
        else:
            if not low <= size <= high:
                yield doc.diagnostic((*where, "limits", "memory"), "FC144",
                                     f"`memory`: {memory!r} is out of range ({format_size(low)} to "
                                     f"{format_size(high)})", "an empty Lua runtime takes ~100 KiB; the "
                                     "default is 64MiB (docs/sandbox.md, Limits)")
    instructions = limits.get("instructions_per_task")
    if isinstance(instructions, int) and not isinstance(instructions, bool):
        low, high = INSTRUCTIONS_RANGE
        if not low <= instructions <= high:
            yield doc.diagnostic((*where, "limits", "instructions_per_task"), "FC145",
                                 f"`instructions_per_task`: {instructions:,} is out of range ({low:,} to {high:,})",
                                 "the default is 50,000,000 per workflow task and 1,000,000,000 per activity "
                                 "attempt (docs/sandbox.md, Limits)")

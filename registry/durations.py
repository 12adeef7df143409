"""Durations as users write them: ``250ms``, ``5s``, ``10m``, ``1h30m``, ``2d``, or integer milliseconds."""

from __future__ import annotations

import re
from datetime import timedelta

from registry.errors import FlowError

#: The pattern the JSON Schemas use for duration strings (kept in sync with schemas/*.json).
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h|d))+$"
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_duration(value: str | int | float, *, what: str = "duration") -> timedelta:
    """Parse a duration; raise FlowError naming ``what`` when it is malformed or negative."""
    if isinstance(value, bool):
        raise FlowError(f"{what}: expected a duration, got a boolean", hint='write e.g. "5s" or 5000 (ms)')
    if isinstance(value, int | float):
        if value < 0:
            raise FlowError(f"{what}: duration must not be negative, got {value}", hint="use 0 or more ms")
        return timedelta(milliseconds=value)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return timedelta(milliseconds=int(text))
        if re.fullmatch(DURATION_PATTERN, text):
            total = sum(float(num) * _UNIT_MS[unit] for num, unit in _PART.findall(text))
            return timedelta(milliseconds=total)
    raise FlowError(
        f"{what}: {value!r} is not a duration",
        hint='write a number with a unit (250ms, 5s, 10m, 1h30m, 2d) or an integer of milliseconds',
    )

"""Durations as users write them: ``250ms``, ``5s``, ``10m``, ``1h30m``, ``2d``, or integer milliseconds."""

from __future__ import annotations

import math
import re
from datetime import timedelta

from registry.errors import FlowError

#: The pattern the JSON Schemas use for duration strings (kept in sync with schemas/*.json).
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h|d))+$"
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
#: The longest duration flowctl accepts anywhere: 100 years (Temporal keeps durations as nanoseconds
#: in 64 bits, about 292 years, and adds them to the current time).
MAX_DURATION_MS = 36_500 * 86_400_000
MAX_DURATION_TEXT = "36500d (100 years)"


def parse_duration(value: str | int | float, *, what: str = "duration") -> timedelta:
    """Parse a duration; raise FlowError naming ``what`` when it is malformed, negative or over the maximum."""
    millis = duration_ms(value, what=what)
    return timedelta(milliseconds=millis)


def duration_ms(value: str | int | float, *, what: str = "duration") -> float:
    """The milliseconds of a duration, checked to lie in 0 … :data:`MAX_DURATION_MS` (FlowError otherwise)."""
    millis = _millis(value, what)
    if not math.isfinite(millis) or millis > MAX_DURATION_MS:
        raise FlowError(f"{what}: {_shown(value)} is out of range: a duration is at most {MAX_DURATION_TEXT}",
                        hint=f"write a duration from 0 to {MAX_DURATION_TEXT}, e.g. 30d")
    return millis


def _millis(value: str | int | float, what: str) -> float:
    if isinstance(value, bool):
        raise FlowError(f"{what}: expected a duration, got a boolean", hint='write e.g. "5s" or 5000 (ms)')
    if isinstance(value, int | float):
        if value < 0:
            raise FlowError(f"{what}: duration must not be negative, got {value}", hint="use 0 or more ms")
        return float(value) if isinstance(value, float) else min(value, MAX_DURATION_MS + 1)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return min(int(text), MAX_DURATION_MS + 1)
        if re.fullmatch(DURATION_PATTERN, text):
            return sum(min(float(num) * _UNIT_MS[unit], MAX_DURATION_MS + 1.0) for num, unit in _PART.findall(text))
    raise FlowError(
        f"{what}: {_shown(value)} is not a duration",
        hint='write a number with a unit (250ms, 5s, 10m, 1h30m, 2d) or an integer of milliseconds',
    )


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."

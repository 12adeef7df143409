"""When a ``temporal.schedule`` entry acts: its cron, interval and calendar specs, checked and normalized (pure).

The grammar is Temporal's own (its scheduler's ``calendar.go``), so what validate accepts the
server accepts: a calendar value is ``*``, a value, a range ``a-b``, a step ``a-b/n``, ``a/n`` or
``*/n``, or a comma list of those; months may be named by three letters or more (``jan``,
``March``), weekdays by two or more (``mo``, ``fri``), 0 and 7 both being Sunday. A cron
expression has 5 fields (minute hour day-of-month month day-of-week), 6 (+ year) or 7 (seconds
first), or is ``@yearly``/``@annually``/``@monthly``/``@weekly``/``@daily``/``@midnight``/
``@hourly`` or ``@every 30m[/5m]``; it may start with ``TZ=Zone `` (or ``CRON_TZ=``) and end with
``# comment``.

:func:`check_schedule` is the schema stage's extra check of a schedule entry (FC111-FC116);
:func:`normalized_spec` is the spec as plain data, which ``registry/schedules.py`` digests and
the runner turns into temporalio's ``ScheduleSpec``.
"""

from __future__ import annotations

import datetime
import functools
import re
from collections.abc import Iterator, Mapping
from typing import Any

from registry.diagnostics import Diagnostic
from registry.durations import parse_duration
from registry.errors import FlowError
from registry.yamlfile import JsonPath, YamlDocument

__all__ = ["CALENDAR_FIELDS", "SCHEDULE_KIND", "SpecError", "check_schedule", "duration_seconds", "normalized_spec",
           "parse_timestamp", "plain_value"]

SCHEDULE_KIND = "temporal.schedule"

#: Calendar fields in Temporal's order: (lowest, highest, default when unset, how names are read).
CALENDAR_FIELDS: dict[str, tuple[int, int, str, str]] = {
    "second": (0, 59, "0", ""), "minute": (0, 59, "0", ""), "hour": (0, 23, "0", ""),
    "day_of_month": (1, 31, "*", ""), "month": (1, 12, "*", "month"), "year": (2000, 2100, "*", ""),
    "day_of_week": (0, 7, "*", "weekday"),
}
#: The fields of a cron expression with 5, 6 and 7 parts.
CRON_LAYOUTS = {5: ("minute", "hour", "day_of_month", "month", "day_of_week"),
                6: ("minute", "hour", "day_of_month", "month", "day_of_week", "year"),
                7: ("second", "minute", "hour", "day_of_month", "month", "day_of_week", "year")}
PREDEFINED_CRON = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
                   "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december")
_WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
_DIGITS = re.compile(r"^[0-9]+$")
#: (start, end, step), inclusive, as Temporal's ``Range``
Range = tuple[int, int, int]


class SpecError(ValueError):
    """A spec value Temporal would refuse; the message says what is wrong with it (``field``: which one)."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


# ---------------------------------------------------------------------- calendar values


def parse_calendar_value(value: str | int, field: str) -> list[Range]:
    """``value`` of calendar ``field`` as ranges; day_of_week folded onto 0-6; year ``*`` as no range (any)."""
    low, high, default, names = CALENDAR_FIELDS[field]
    text = str(value).strip() or default
    if field == "year" and text == "*":
        return []
    ranges: list[Range] = []
    for part in text.split(","):
        step, has_step = 1, False
        if "/" in part:
            pieces = part.split("/")
            if len(pieces) != 2 or not _DIGITS.match(pieces[1].strip()) or int(pieces[1]) < 1:
                raise SpecError(f"{part!r}: a step is `/` and a whole number of at least 1")
            part, step, has_step = pieces[0], int(pieces[1]), True
        part = part.strip()
        start, end = low, high
        if part != "*":
            if "-" in part:
                pieces = part.split("-")
                if len(pieces) != 2:
                    raise SpecError(f"{part!r}: a range is `first-last`")
                start = _value(pieces[0], low, high, names)
                end = _value(pieces[1], start, high, names)
            else:
                start = _value(part, low, high, names)
                end = start if not has_step else high
        ranges.append((start, end, step))
    return _weekdays(ranges) if field == "day_of_week" else ranges


def _value(text: str, low: int, high: int, names: str) -> int:
    text = text.strip()
    lowered = text.lower()
    if names == "month" and len(lowered) >= 3:
        found = next((i + 1 for i, month in enumerate(_MONTHS) if month.startswith(lowered)), None)
        if found is not None:
            return _within(found, text, low, high)
    if names == "weekday" and len(lowered) >= 2:
        found = next((i for i, day in enumerate(_WEEKDAYS) if day.startswith(lowered)), None)
        if found is not None:
            return _within(found, text, low, high)
    if not _DIGITS.match(text):
        what = {"month": " or a month name (jan, february)", "weekday": " or a weekday name (mon, fri)"}.get(names, "")
        raise SpecError(f"{text!r} is not a number{what}")
    return _within(int(text), text, low, high)


def _within(number: int, text: str, low: int, high: int) -> int:
    if not low <= number <= high:
        raise SpecError(f"{text!r} is out of range {low}-{high}")
    return number


def _weekdays(ranges: list[Range]) -> list[Range]:
    """Day-of-week ranges with 7 (Sunday again) folded onto 0, as runs of consecutive days."""
    days = sorted({day % 7 for start, end, step in ranges for day in range(start, end + 1, step)})
    runs: list[Range] = []
    for day in days:
        if runs and runs[-1][1] == day - 1:
            runs[-1] = (runs[-1][0], day, 1)
        else:
            runs.append((day, day, 1))
    return runs


# ---------------------------------------------------------------------- cron expressions


def split_cron(expression: str) -> tuple[str, str, str]:
    """``(timezone from a TZ= prefix, the expression, its comment)``; the expression with @-shorthands expanded."""
    text, _, comment = expression.partition("#")
    text = text.strip()
    zone = ""
    if text.startswith(("TZ=", "CRON_TZ=")):
        prefix, _, text = text.partition(" ")
        zone = prefix.partition("=")[2]
        if not zone or not text.strip():
            raise SpecError("a `TZ=Zone` prefix is followed by a space and the expression")
    text = text.strip()
    return zone, PREDEFINED_CRON.get(text, text), comment.strip()


def check_cron(expression: str) -> str:
    """The timezone of a valid cron expression's ``TZ=`` prefix ("" when none); SpecError naming the bad part."""
    zone, text, _ = split_cron(expression)
    if text.startswith("@every"):
        _, _, period = text.partition(" ")
        every, _, offset = period.strip().partition("/")
        if not every:
            raise SpecError("`@every` needs a period, e.g. `@every 30m` or `@every 1h/5m`")
        _interval(every, offset or None)
        return zone
    if text.startswith("@"):
        raise SpecError(f"unknown shorthand {text.split()[0]!r} (known: {', '.join(PREDEFINED_CRON)}, @every)")
    fields = text.split()
    layout = CRON_LAYOUTS.get(len(fields))
    if layout is None:
        raise SpecError(f"{len(fields)} field(s): a cron expression has 5 (minute hour day-of-month month "
                        "day-of-week), 6 (+ year) or 7 (seconds first)")
    for name, value in zip(layout, fields, strict=True):
        try:
            parse_calendar_value(value, name)
        except SpecError as exc:
            raise SpecError(f"{name.replace('_', '-')} field: {exc}") from None
    return zone


def _interval(every: Any, offset: Any) -> tuple[float, float]:
    """``(every, offset)`` in seconds, as Temporal accepts them: every at least 1 s, 0 <= offset < every."""
    period = duration_seconds(every, "every") or 0.0
    shift = duration_seconds(offset, "offset") or 0.0
    if period < 1:
        raise SpecError(f"every {every!r} is shorter than 1s, the shortest period Temporal schedules", "every")
    if shift >= period:
        raise SpecError(f"offset {offset!r} is not shorter than every {every!r}", "offset")
    return period, shift


# ---------------------------------------------------------------------- times and zones


def parse_timestamp(value: Any) -> datetime.datetime:
    """A YAML timestamp or ISO 8601 text as an aware UTC datetime (no offset given: UTC)."""
    if isinstance(value, datetime.datetime):
        stamp = value
    elif isinstance(value, datetime.date):
        stamp = datetime.datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        text = value.strip()
        try:
            stamp = datetime.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
        except ValueError:
            raise SpecError(f"{value!r} is not an ISO 8601 time (e.g. 2025-01-31T09:00:00Z)") from None
    else:
        raise SpecError(f"{value!r} is not a time: write e.g. 2025-01-31T09:00:00Z")
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=datetime.UTC)
    return stamp.astimezone(datetime.UTC)


def check_zone(name: str) -> None:
    """SpecError when ``name`` is not an IANA time zone this machine knows (skipped when it knows none)."""
    zones = _zones()
    if zones and name not in zones and name != "UTC":
        raise SpecError(f"{name!r} is not an IANA time zone (e.g. Europe/Berlin, America/New_York, UTC)")


@functools.cache
def _zones() -> frozenset[str]:
    import zoneinfo  # only validate of a schedule with a zone needs the zone list

    try:
        return frozenset(zoneinfo.available_timezones())
    except Exception:  # no time zone database here: the server judges the name
        return frozenset()


# ---------------------------------------------------------------------- the schema stage's check


def check_schedule(doc: YamlDocument, where: JsonPath, item: Mapping[str, Any]) -> Iterator[Diagnostic]:
    """FC111-FC116: what a schedule entry's spec says that Temporal would refuse (values of the wrong
    type are the JSON Schema's FC1xx already)."""

    def problem(sub: JsonPath, code: str, message: str, hint: str) -> Diagnostic:
        return doc.diagnostic((*where, *sub), code, message, hint)

    zone = item.get("timezone")
    for sub, expression in _listed(item.get("cron"), "cron"):
        if not isinstance(expression, str):
            continue
        try:
            prefix = check_cron(expression)
        except SpecError as exc:
            yield problem(sub, "FC111", f"cron {expression!r}: {exc}",
                          "write `minute hour day-of-month month day-of-week`, e.g. \"0 9 * * MON-FRI\" (9:00 on "
                          "weekdays), or @daily, @hourly, `@every 30m`")
            continue
        if prefix and isinstance(zone, str) and zone != prefix:
            yield problem(sub, "FC111", f"cron {expression!r} names time zone {prefix!r}, the entry {zone!r}",
                          "keep one: remove the TZ= prefix or the `timezone` field")
        elif prefix:
            yield from _zone_problem(problem, sub, prefix)
    for sub, interval in _listed(item.get("interval"), "interval"):
        if isinstance(interval, Mapping) and interval.get("every") is not None:
            try:
                _interval(interval["every"], interval.get("offset"))
            except SpecError as exc:
                yield problem((*sub, exc.field), "FC113", f"interval: {exc}",
                              "write e.g. {every: 1h} or {every: 1d, offset: 9h} (offset shorter than every)")
    for list_name in ("calendar", "skip"):
        for sub, calendar in _listed(item.get(list_name), list_name):
            if not isinstance(calendar, Mapping):
                continue
            for field, value in calendar.items():
                if field in CALENDAR_FIELDS and isinstance(value, str | int) and not isinstance(value, bool):
                    try:
                        parse_calendar_value(value, field)
                    except SpecError as exc:
                        low, high = CALENDAR_FIELDS[field][:2]
                        yield problem((*sub, field), "FC112", f"calendar {field} {value!r}: {exc}",
                                      f"write `*`, a value {low}-{high}, a range `a-b`, a step `*/n` or `a-b/n`, "
                                      "or a comma list of them")
    yield from _window(item, problem)
    if isinstance(zone, str):
        yield from _zone_problem(problem, ("timezone",), zone)
    if not any(item.get(key) for key in ("cron", "interval", "calendar")):
        yield doc.diagnostic(where, "FC116", f"schedule {item.get('name', '')!r} gives no times: no cron, "
                             "interval or calendar", "add e.g. `cron: \"0 2 * * *\"` (02:00 every day) or "
                             "`interval: {every: 1h}`; trigger it by hand with `flowctl schedule trigger`")


def _listed(value: Any, name: str) -> Iterator[tuple[JsonPath, Any]]:
    """A field that is one value or a list of values, each with its path."""
    if isinstance(value, list):
        yield from (((name, index), each) for index, each in enumerate(value))
    elif value is not None:
        yield (name,), value


def _window(item: Mapping[str, Any], problem: Any) -> Iterator[Diagnostic]:
    times: dict[str, datetime.datetime] = {}
    for key in ("start_at", "end_at"):
        if item.get(key) is None:
            continue
        try:
            times[key] = parse_timestamp(item[key])
        except SpecError as exc:
            yield problem((key,), "FC114", f"{key}: {exc}", "write an ISO 8601 time such as 2025-01-31T09:00:00Z")
    if len(times) == 2 and times["end_at"] <= times["start_at"]:
        yield problem(("end_at",), "FC114", f"end_at {times['end_at'].isoformat()} is not after start_at "
                      f"{times['start_at'].isoformat()}: the schedule would never act", "swap them or fix one")


def _zone_problem(problem: Any, sub: JsonPath, zone: str) -> Iterator[Diagnostic]:
    try:
        check_zone(zone)
    except SpecError as exc:
        yield problem(sub, "FC115", f"time zone {exc}", "use an IANA name from the tz database, e.g. Europe/Berlin")


# ---------------------------------------------------------------------- the spec as plain data


def normalized_spec(data: Mapping[str, Any]) -> dict[str, Any]:
    """A valid schedule entry's times as plain data (seconds, UTC ISO times, calendar ranges): what is
    compared with the cluster and turned into temporalio's ``ScheduleSpec``. SpecError if it is invalid."""
    intervals = []
    for _, interval in _listed(data.get("interval"), "interval"):
        every, offset = _interval(interval["every"], interval.get("offset"))
        intervals.append({"every": every, "offset": offset})
    cron = [str(expression).strip() for _, expression in _listed(data.get("cron"), "cron")]
    for expression in cron:
        check_cron(expression)
    return {
        "cron": cron, "intervals": intervals,
        "calendars": [_calendar(c) for c in data.get("calendar") or []],
        "skip": [_calendar(c) for c in data.get("skip") or []],
        "timezone": data.get("timezone") or None,
        "start_at": parse_timestamp(data["start_at"]).isoformat() if data.get("start_at") is not None else None,
        "end_at": parse_timestamp(data["end_at"]).isoformat() if data.get("end_at") is not None else None,
        "jitter": duration_seconds(data.get("jitter"), "jitter"),
    }


def _calendar(calendar: Mapping[str, Any]) -> dict[str, Any]:
    ranges = {field: [list(r) for r in parse_calendar_value(calendar.get(field, default), field)]
              for field, (_, _, default, _) in CALENDAR_FIELDS.items()}
    return {**ranges, "comment": str(calendar.get("comment") or "")}


def duration_seconds(value: Any, what: str) -> float | None:
    """A duration in seconds (None stays None); SpecError naming ``what`` when it is not one."""
    if value is None:
        return None
    try:
        return parse_duration(value, what=what).total_seconds()
    except FlowError as exc:
        raise SpecError(exc.message, what) from None


def plain_value(value: Any) -> Any:
    """A YAML value as JSON: timestamps and dates become ISO 8601 text (what a schedule's runs receive)."""
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): plain_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_value(v) for v in value]
    return value

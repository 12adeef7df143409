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
from collections.abc import Iterable
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

__all__ = ["GOLDEN_DIR", "check_golden", "commands_of", "event_type_name", "format_duration", "golden_path",
           "text_diff"]

GOLDEN_DIR = "golden"
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_HEADER = ("# flowctl golden history: the commands of one test run, in order.\n"
           "# Regenerate with `flowctl test --update-golden` after an intended change.\n")


def event_type_name(event: HistoryEvent) -> str:
    """``WorkflowExecutionStarted`` for EVENT_TYPE_WORKFLOW_EXECUTION_STARTED."""
    raw = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
    return "".join(part.capitalize() for part in raw.split("_"))


def format_duration(seconds: float) -> str:
    """``24h``, ``1h30m``, ``2s``, ``250ms``: how entries write durations (hours are the largest unit)."""
    ms = round(seconds * 1000)
    if ms == 0:
        return "0s"
    parts = []
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        if ms >= size:
            parts.append(f"{ms // size}{unit}")
            ms %= size
    return "".join(parts)


def commands_of(events: Iterable[HistoryEvent]) -> list[str]:
    """The commands a run issued (one line each), read from its history events."""
    lines: list[str] = []
    for event in events:
        line = _command_line(event)
        if line is not None:
            lines.append(line)
    return lines


def _command_line(event: HistoryEvent) -> str | None:
    kind = event.event_type
    if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        return f"activity {event.activity_task_scheduled_event_attributes.activity_type.name}"
    if kind == EventType.EVENT_TYPE_TIMER_STARTED:
        timeout = event.timer_started_event_attributes.start_to_fire_timeout
        return f"timer {format_duration(timeout.seconds + timeout.nanos / 1e9)}"
    if kind == EventType.EVENT_TYPE_TIMER_CANCELED:
        return "cancel_timer"
    if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED:
        return "cancel_activity"
    if kind == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
        return f"child {event.start_child_workflow_execution_initiated_event_attributes.workflow_type.name}"
    if kind == EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED:
        return f"signal_external {event.signal_external_workflow_execution_initiated_event_attributes.signal_name}"
    if kind == EventType.EVENT_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED:
        return "cancel_external"
    if kind == EventType.EVENT_TYPE_MARKER_RECORDED:
        return f"marker {event.marker_recorded_event_attributes.marker_name}"
    if kind == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
        fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
        return "upsert_search_attributes " + ",".join(sorted(fields))
    if kind == EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED:
        memo = event.workflow_properties_modified_event_attributes.upserted_memo.fields
        return "modify_memo " + ",".join(sorted(memo))
    if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
        return "complete"
    if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
        failure = event.workflow_execution_failed_event_attributes.failure
        kind_name = failure.application_failure_info.type if failure.HasField("application_failure_info") else ""
        return f"fail {kind_name}".rstrip()
    if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
        return "continue_as_new"
    if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED:
        return "canceled"
    return None


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


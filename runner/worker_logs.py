"""The log lines of ``flowctl worker`` and ``flowctl dev``: logfmt (the default) or JSON, one line per event.

Three sources share one stream (stderr) and one format (docs/operations.md, Logs):

- flowctl's own events, :func:`log_event` (``event=worker.started task_queue=…``);
- Python log records: temporalio's, and Lua ``print``/``log`` lines, whose context is written as
  fields of their own (``entry``, ``where``, ``workflow_id``, ``run_id``...) and whose Lua fields
  (``log.info("paid", {order = 7})``) are fields of the line too (``order=7``; one named like a
  field of the line is written ``lua.order``);
- the Rust core's logs, forwarded to the ``temporalio.core`` logger (:func:`core_logging`), never
  written by the core itself: no ANSI colour codes, the same format as the rest.

Control characters in values (an ESC a Lua string carries) are escaped in both formats.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

from temporalio import activity, workflow
from temporalio.exceptions import ApplicationError
from temporalio.runtime import LogForwardingConfig, LoggingConfig, TelemetryFilter

from runner.temporal.workflow import LuaWorkflowError, RevisionChanged

__all__ = ["LOG_FORMATS", "configure_logging", "core_logging", "log_event", "record_fields"]

#: ``flowctl worker --log-format``
LOG_FORMATS = ("logfmt", "json")
#: the format of this process's lines (configure_logging sets it)
_format = {"name": "logfmt"}
#: where the Rust core's log records go
CORE_LOGGER = "temporalio.core"
#: the extra fields of temporalio's workflow/activity loggers flowctl writes, and their names on the line
_TEMPORAL_FIELDS = {"workflow_id": "workflow_id", "run_id": "run_id", "workflow_run_id": "run_id",
                    "activity_type": "activity", "attempt": "attempt"}


def _logfmt(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str) \
        if isinstance(value, Mapping | list | tuple) else str(value)
    if not text or any(c in text for c in ' ="\\') or not text.isprintable():
        text = json.dumps(text, ensure_ascii=False)  # quoted, with \n, \" and control characters escaped
        if not text.isprintable():  # json leaves some non-printable characters (U+2028...) as they are
            text = json.dumps(json.loads(text))
    return text


def _line(fields: Mapping[str, Any]) -> str:
    """One log line in this process's format (``None`` values left out)."""
    kept = {key: value for key, value in fields.items() if value is not None}
    if _format["name"] == "json":
        return json.dumps(kept, ensure_ascii=False, default=str)
    return " ".join(f"{key}={_logfmt(value)}" for key, value in kept.items())


def _timestamp(seconds: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(seconds))


def log_event(event: str, *, level: str = "info", stream: TextIO | None = None, **fields: Any) -> None:
    """Write one line: ``ts=… level=… event=… key=value…`` (logfmt or JSON; None values left out)."""
    line = _line({"ts": _timestamp(), "level": level, "event": event, **fields})
    print(line, file=stream or sys.stderr, flush=True)


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """A Python log record as the fields of its line: time, level, logger, message, context, Lua/core fields."""
    fields: dict[str, Any] = {"ts": _timestamp(record.created), "level": record.levelname.lower(),
                              "logger": record.name, "msg": record.getMessage()}
    fields["entry"] = getattr(record, "entry_id", None)
    fields["where"] = getattr(record, "lua_where", None)
    for extra in ("temporal_workflow", "temporal_activity"):
        info = getattr(record, extra, None)
        if isinstance(info, Mapping):
            for key, name in _TEMPORAL_FIELDS.items():
                if info.get(key) is not None:
                    fields[name] = info[key]
    core = getattr(record, "temporal_log", None)
    if core is not None:
        fields["target"] = getattr(core, "target", None)
        _add_fields(fields, getattr(core, "fields", None), "core.")
    _add_fields(fields, getattr(record, "lua_fields", None), "lua.")
    if record.exc_info and record.exc_info[1] is not None:
        fields["error"] = str(record.exc_info[1])
    return fields


def _add_fields(fields: dict[str, Any], extra: Any, prefix: str) -> None:
    """``extra``'s keys as fields; a key the line already has is written ``prefix + key``."""
    if isinstance(extra, Mapping):
        for key, value in extra.items():
            name = str(key)
            fields[prefix + name if name in fields else name] = value
    elif isinstance(extra, list) and extra:  # log.info("x", {1, 2}): a Lua array
        fields[prefix + "fields" if "fields" in fields else "fields"] = extra


class _LineFormatter(logging.Formatter):
    """Python log records (temporalio's, the core's, Lua print/log lines) as lines like log_event's."""

    def format(self, record: logging.LogRecord) -> str:
        return _line(record_fields(record))


class _NoFlowctlTracebacks(logging.Filter):
    """Failures from Lua carry their Lua traceback in the message; flowctl's Python frames are noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], ApplicationError | LuaWorkflowError | RevisionChanged):
            record.exc_text = None
        return True


def configure_logging(level: int = logging.INFO, log_format: str = "logfmt") -> None:
    """Log lines (worker events, Lua print/log, SDK and core logs) to stderr as logfmt or JSON."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"unknown log format {log_format!r}: use one of {', '.join(LOG_FORMATS)}")
    _format["name"] = log_format
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LineFormatter())
    handler.addFilter(_NoFlowctlTracebacks())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # the workflow's and activity's ids are fields of the line, not a dict appended to the message
    workflow.logger.workflow_info_on_message = False
    activity.logger.activity_info_on_message = False


def core_logging() -> LoggingConfig:
    """The Rust core's logs (warnings and up) forwarded to the ``temporalio.core`` logger, uncoloured."""
    forwarding = LogForwardingConfig(logger=logging.getLogger(CORE_LOGGER), append_target_to_name=False,
                                     prepend_target_on_message=False, append_log_fields_to_message=False)
    return LoggingConfig(filter=TelemetryFilter(core_level="WARN", other_level="ERROR"), forwarding=forwarding)

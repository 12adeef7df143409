"""The watchdog's record of running Lua calls, kept in memory the supervisor shares with the serving process.

``flowctl worker`` serves in a child process (runner.temporal.supervisor). The child writes a
:class:`CallTable` slot when a Lua call begins and clears it when the call returns: every
workflow activation of a Lua run (its main code, signal, query and update handlers) and every
Lua activity attempt, with the run's workflow ID, run ID, entry and Lua file. The supervisor
reads the table from outside: a call stuck in C code that holds the GIL stops every thread of
the child, including any watchdog thread it could have, but not another process.

A call past its allowance makes the supervisor kill the child, record the run as quarantined in
the registry and start a new child; the run's next workflow task (or the activity's next
attempt) then fails at once with a non-retryable ``LIMIT_EXCEEDED`` (:func:`quarantine_failure`)
instead of freezing the next worker too.

Layout: a header, then fixed-size slots. A slot's generation counter is odd while a call runs
and even when the slot is free; the writer sets it last, so a reader that sees the same odd
generation before and after reading a slot read a whole record.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import mmap
import os
import struct
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import temporalio.bridge.proto.workflow_activation as activation
import temporalio.converter
import temporalio.workflow
from temporalio import activity
from temporalio.runtime import Runtime
from temporalio.worker import UnsandboxedWorkflowRunner, WorkflowInstance, WorkflowInstanceDetails

from registry.store import QuarantinedRun
from runner.sandbox.failures import FlowFailure

__all__ = [
    "ACTIVITY_CALL",
    "DEFAULT_LUA_CALL_TIMEOUT",
    "STALL_ENV",
    "WORKFLOW_CALL",
    "CallTable",
    "LuaCall",
    "WatchedWorkflowRunner",
    "attach",
    "count_watchdog_kills",
    "encode_texts",
    "quarantine_due",
    "quarantine_failure",
    "stall_for_tests",
    "watched_activity",
]

#: Seconds one workflow activation's Lua may run: 2x temporalio's deadlock detection (2 s per activation).
DEFAULT_LUA_CALL_TIMEOUT = 4.0
#: Test-only: an entry ID whose workflow runs block in C, holding the GIL, at their first print/log
#: line — a stand-in for a C function that never returns. Never set it in production.
STALL_ENV = "FLOWCTL_TEST_WATCHDOG_STALL"

_log = logging.getLogger(__name__)
_MAGIC = b"flowctlW"
_HEADER = struct.Struct("<8sIIII")  # magic, layout version, slots, slot size, ready (the child serves)
_HEADER_SIZE = 64
_READY = struct.Struct("<I")
_READY_AT = 20  # the last field of _HEADER
_GEN = struct.Struct("<Q")
#: started (CLOCK_MONOTONIC ns), allowance ms, history length, kind, the byte length of each text
_BODY = struct.Struct("<QIIB3x6H")
_TEXT_AT = _GEN.size + _BODY.size
SLOT_SIZE = 2048
DEFAULT_SLOTS = 512
#: the longest text kept per field, in bytes (Temporal IDs are at most 1,000 characters by default)
_FIELD_BYTES = (1000, 64, 255, 255, 200, 200)
#: what a slot records: a workflow activation, or a Lua activity attempt
WORKFLOW_CALL, ACTIVITY_CALL = 1, 2
_KINDS = {WORKFLOW_CALL: "workflow", ACTIVITY_CALL: "activity"}
_TRUNCATED = 0x80


@dataclass(frozen=True)
class LuaCall:
    """One running Lua call, as the supervisor reads it from the table."""

    #: ``workflow`` (an activation of a run) or ``activity`` (a Lua activity attempt)
    kind: str
    workflow_id: str
    run_id: str
    activity_id: str
    #: the entry ID (the workflow type or activity type)
    entry: str
    #: the Lua file of the entry
    lua_file: str
    #: what the call was doing: ``start``, ``signal 'approve'``, ``timer``, ``activity attempt 2``...
    doing: str
    started_ns: int
    allowance_ms: int
    #: the history length when the workflow task began (0: an activity)
    history_length: int
    #: an ID was longer than the table keeps: the call can be reported but not quarantined
    truncated: bool = False

    @property
    def where(self) -> str:
        """The Lua location, as precise as the child can say cheaply: ``order.lua (signal 'approve')``."""
        return f"{self.lua_file or '?'} ({self.doing})" if self.doing else self.lua_file or "?"

    def ran_seconds(self, now_ns: int | None = None) -> float:
        """How long the call has been running."""
        return ((now_ns if now_ns is not None else time.monotonic_ns()) - self.started_ns) / 1e9

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {"kind": self.kind, "workflow_id": self.workflow_id, "run_id": self.run_id,
                "activity_id": self.activity_id or None, "entry": self.entry, "where": self.where,
                "allowance_s": self.allowance_ms / 1000, "history_length": self.history_length,
                "truncated": self.truncated}


class CallTable:
    """The shared table of running Lua calls: the child writes (begin/end), the supervisor reads."""

    def __init__(self, buffer: mmap.mmap, fd: int) -> None:
        self.buffer = buffer
        #: the file descriptor the table lives in (the supervisor passes it to each child)
        self.fd = fd
        magic, _version, self.slots, slot_size, _ready = _HEADER.unpack_from(buffer, 0)
        if magic != _MAGIC or slot_size != SLOT_SIZE:
            raise ValueError("not a flowctl watchdog table")
        self._free = list(range(self.slots - 1, -1, -1))
        self._gen = [0] * self.slots
        self._full_warned = False

    @classmethod
    def create(cls, slots: int = DEFAULT_SLOTS) -> CallTable:
        """A new zeroed table in an anonymous file (nothing is left behind, even after SIGKILL)."""
        if hasattr(os, "memfd_create"):  # Linux: memory only, no file system involved
            fd = os.memfd_create("flowctl-watchdog", 0)  # not close-on-exec: each child inherits it
        else:
            fd, path = tempfile.mkstemp(prefix="flowctl-watchdog-")
            os.unlink(path)
        size = _HEADER_SIZE + slots * SLOT_SIZE
        os.ftruncate(fd, size)
        buffer = mmap.mmap(fd, size)
        _HEADER.pack_into(buffer, 0, _MAGIC, 1, slots, SLOT_SIZE, 0)
        return cls(buffer, fd)

    @classmethod
    def attach(cls, fd: int) -> CallTable:
        """The table a supervisor created, from the file descriptor it passed down."""
        return cls(mmap.mmap(fd, os.fstat(fd).st_size), fd)

    # -- the child -------------------------------------------------------------------------

    def begin(self, kind: int, texts: bytes, lengths: tuple[int, ...], allowance_ms: int,
              history_length: int = 0, *, truncated: bool = False) -> int:
        """Record a call (WORKFLOW_CALL or ACTIVITY_CALL) that starts now, with its ``encode_texts``.

        Its slot; -1 when every slot is taken (the call is not watched).
        """
        try:
            slot = self._free.pop()  # list.pop and append are atomic: no lock on this path
        except IndexError:
            if not self._full_warned:
                self._full_warned = True
                _log.warning("the watchdog's call table is full (%d calls at once): later calls are not "
                             "watched", self.slots)
            return -1
        at = _HEADER_SIZE + slot * SLOT_SIZE
        _BODY.pack_into(self.buffer, at + _GEN.size, time.monotonic_ns(), allowance_ms, history_length,
                        kind | (_TRUNCATED if truncated else 0), *lengths)
        self.buffer[at + _TEXT_AT:at + _TEXT_AT + len(texts)] = texts
        self._gen[slot] += 1
        _GEN.pack_into(self.buffer, at, self._gen[slot])  # odd: running (written last)
        return slot

    def end(self, slot: int) -> None:
        """The call in ``slot`` returned."""
        if slot < 0:
            return
        self._gen[slot] += 1
        _GEN.pack_into(self.buffer, _HEADER_SIZE + slot * SLOT_SIZE, self._gen[slot])
        self._free.append(slot)

    def mark_ready(self) -> None:
        """The child serves: from now on an exit is a crash to restart, not a failure to start."""
        _READY.pack_into(self.buffer, _READY_AT, 1)

    # -- the supervisor --------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Whether the current child said it serves."""
        return bool(_READY.unpack_from(self.buffer, _READY_AT)[0])

    def running(self) -> list[LuaCall]:
        """The calls running now (each read consistently)."""
        found = []
        for slot in range(self.slots):
            call = self._read(slot)
            if call is not None:
                found.append(call)
        return found

    def overdue(self, now_ns: int | None = None) -> list[LuaCall]:
        """The running calls past their allowance."""
        now = now_ns if now_ns is not None else time.monotonic_ns()
        return [call for call in self.running() if now - call.started_ns > call.allowance_ms * 1_000_000]

    def clear(self) -> None:
        """Forget every call and the ready flag (before a new child starts)."""
        self.buffer[_HEADER_SIZE:] = bytes(len(self.buffer) - _HEADER_SIZE)
        _READY.pack_into(self.buffer, _READY_AT, 0)

    def close(self) -> None:
        self.buffer.close()
        os.close(self.fd)

    def _read(self, slot: int) -> LuaCall | None:
        at = _HEADER_SIZE + slot * SLOT_SIZE
        gen = _GEN.unpack_from(self.buffer, at)[0]
        if gen % 2 == 0:
            return None
        started, allowance, history, kind, *lengths = _BODY.unpack_from(self.buffer, at + _GEN.size)
        raw = bytes(self.buffer[at + _TEXT_AT:at + _TEXT_AT + sum(lengths)])
        if _GEN.unpack_from(self.buffer, at)[0] != gen:
            return None  # the call ended (or another began) while we read: not stuck
        texts, offset = [], 0
        for length in lengths:
            texts.append(raw[offset:offset + length].decode("utf-8", "replace"))
            offset += length
        workflow_id, run_id, activity_id, entry, lua_file, doing = texts
        return LuaCall(_KINDS.get(kind & ~_TRUNCATED, "?"), workflow_id, run_id, activity_id, entry, lua_file, doing,
                       started_ns=started, allowance_ms=allowance, history_length=history,
                       truncated=bool(kind & _TRUNCATED))


def encode_texts(*texts: str) -> tuple[bytes, tuple[int, ...], bool]:
    """The texts of a slot (workflow ID, run ID, activity ID, entry, Lua file, doing — or the first
    few of them), each cut to its field; ``truncated``: an ID did not fit."""
    parts, truncated = [], False
    for text, limit in zip(texts, _FIELD_BYTES[:len(texts)], strict=True):
        data = text.encode("utf-8", "replace")
        if len(data) > limit:
            data, truncated = data[:limit], truncated or limit in _FIELD_BYTES[:3]
        parts.append(data)
    return b"".join(parts), tuple(len(part) for part in parts), truncated


# ------------------------------------------------------------------------ the child's recorder


@dataclass(frozen=True)
class _Watch:
    table: CallTable
    workflow_allowance_ms: int
    activity_allowance_ms: int


_watch: _Watch | None = None


def attach(table: CallTable | None, *, workflow_allowance: float, activity_allowance: float) -> None:
    """Record this process's Lua calls in ``table`` (the supervised child; None: record nothing)."""
    global _watch
    _watch = None if table is None else _Watch(table, int(workflow_allowance * 1000),
                                                 int(activity_allowance * 1000))


class WatchedWorkflowRunner(UnsandboxedWorkflowRunner):
    """The unsandboxed runner (LUA_WORKFLOW_RUNNER_NOTE), recording every activation in the call table.

    ``lua_file(workflow_type)`` names the Lua file of a type (looked up once per cached run).
    """

    def __init__(self, lua_file: Callable[[str], str]) -> None:
        super().__init__()
        self._lua_file = lua_file

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        instance = super().create_instance(det)
        return instance if _watch is None else _WatchedInstance(instance, _watch, det.info, self._lua_file)


class _WatchedInstance(WorkflowInstance):
    """A workflow instance whose activations are recorded (begin before, end after)."""

    def __init__(self, inner: WorkflowInstance, watch: _Watch, info: temporalio.workflow.Info,
                 lua_file: Callable[[str], str]) -> None:
        self._inner = inner
        self._watch = watch
        self._info = info
        self._lua_file = lua_file
        self._texts: tuple[bytes, tuple[int, ...], bool] | None = None

    def activate(self, act: activation.WorkflowActivation) -> Any:
        try:
            slot = self._begin(act)
        except Exception:  # never fail an activation for the watchdog's sake: run it unwatched
            _log.exception("the watchdog cannot record an activation of run %s", act.run_id)
            slot = -1
        try:
            return self._inner.activate(act)
        finally:
            self._watch.table.end(slot)

    def _begin(self, act: activation.WorkflowActivation) -> int:
        if self._texts is None:  # once per cached run: the entry's Lua file needs a lookup
            info = self._info
            self._texts = encode_texts(info.workflow_id, info.run_id, "", info.workflow_type,
                                       self._lua_file(info.workflow_type))
        prefix, lengths, truncated = self._texts
        doing = _doing(act).encode()[:_FIELD_BYTES[-1]]
        return self._watch.table.begin(WORKFLOW_CALL, prefix + doing, (*lengths, len(doing)),
                                       self._watch.workflow_allowance_ms, act.history_length, truncated=truncated)

    def get_serialization_context(self, command_info: Any) -> temporalio.converter.SerializationContext | None:
        return self._inner.get_serialization_context(command_info)

    def get_external_store_context(self, command_info: Any) -> Any:
        return self._inner.get_external_store_context(command_info)

    def get_info(self) -> temporalio.workflow.Info:
        return self._inner.get_info()

    def get_thread_id(self) -> int | None:
        return self._inner.get_thread_id()


def _doing(act: activation.WorkflowActivation) -> str:
    """What an activation asks of the run, in words: ``start``, ``signal 'approve'``, ``timer``..."""
    seen: list[str] = []
    for job in act.jobs:
        variant = job.WhichOneof("variant")
        if variant == "initialize_workflow":
            word = "start"
        elif variant == "signal_workflow":
            word = f"signal {job.signal_workflow.signal_name!r}"
        elif variant == "query_workflow":
            word = f"query {job.query_workflow.query_type!r}"
        elif variant == "do_update":
            word = f"update {job.do_update.name!r}"
        else:
            word = _JOB_WORDS.get(variant or "", variant or "?")
        if word not in seen:
            seen.append(word)
    return ", ".join(seen)


_JOB_WORDS = {"fire_timer": "timer", "resolve_activity": "activity result", "cancel_workflow": "cancel",
              "remove_from_cache": "evict", "resolve_child_workflow_execution": "child result",
              "resolve_child_workflow_execution_start": "child started", "notify_has_patch": "patch",
              "update_random_seed": "random seed", "resolve_signal_external_workflow": "signal sent",
              "resolve_request_cancel_external_workflow": "cancel sent"}

_Fn = TypeVar("_Fn", bound=Callable[..., Any])


def watched_activity(run_lua: _Fn) -> _Fn:
    """``run_lua(revision, ...)`` (a Lua activity attempt, on a pool thread) recorded in the call table."""
    watch = _watch
    if watch is None:
        return run_lua

    @functools.wraps(run_lua)
    def recorded(revision: Any, *args: Any) -> Any:
        info = activity.info()
        texts, lengths, truncated = encode_texts(info.workflow_id or "", info.workflow_run_id or "",
                                                 info.activity_id, revision.entry_id, revision.source_name or "",
                                                 f"activity attempt {info.attempt}")
        slot = watch.table.begin(ACTIVITY_CALL, texts, lengths, watch.activity_allowance_ms, truncated=truncated)
        try:
            return run_lua(revision, *args)
        finally:
            watch.table.end(slot)

    return recorded  # type: ignore[return-value]


# ------------------------------------------------------------------------ quarantined runs


def quarantine_due(record: QuarantinedRun, history_length: int, replaying: bool) -> bool:
    """Whether this workflow task of a quarantined run is the one that fails it.

    The first task at or past the history length the stopped task began at: the same task when a
    worker runs the run and when ``flowctl replay`` replays its history (earlier tasks, which
    completed before, replay as they did). Without a recorded length: the first task not replayed.
    """
    return history_length >= record.history_length if record.history_length else not replaying


def quarantine_failure(record: QuarantinedRun) -> FlowFailure:
    """The non-retryable LIMIT_EXCEEDED a quarantined run (or activity attempt) fails with."""
    what = f"activity {record.activity_id} of this run" if record.activity_id else "this run"
    message = (f"the worker's watchdog stopped {what} at {record.where or '?'}: {record.reason}; the worker "
               f"process was restarted and the run quarantined ({record.at}) so it cannot stop another worker: "
               "a call into C that never returns (or a very slow one) — fix the code and start a new run")
    return FlowFailure("LIMIT_EXCEEDED", message, retryable=False, where=record.where or None,
                       details={"limit": "watchdog", "quarantined": record.to_dict()})


def count_watchdog_kills(runtime: Runtime, kills: Sequence[dict[str, Any]]) -> None:
    """``flowctl_watchdog_kills``: the serving processes the supervisor killed so far, by entry and kind.

    The supervisor hands the list to each new child, so the counter survives the restarts.
    """
    counter = runtime.metric_meter.create_counter(
        "flowctl_watchdog_kills", "serving processes killed by the watchdog (a Lua call past its allowance)")
    for kill in kills:
        counter.with_additional_attributes({"entry": str(kill.get("entry", "?")),
                                            "kind": str(kill.get("kind", "?"))}).add(1)


# ------------------------------------------------------------------------ tests only


def stall_for_tests(handlers: dict[str, Any], entry_id: str) -> None:
    """``FLOWCTL_TEST_WATCHDOG_STALL=entry_id``: that entry's print/log blocks in C with the GIL held."""
    if os.environ.get(STALL_ENV) != entry_id or "log" not in handlers:
        return
    log = handlers["log"]

    @functools.wraps(log)
    def stall(command: Any) -> Any:
        ctypes.PyDLL(None).sleep(3600)  # a PyDLL call keeps the GIL: no thread of this process runs
        return log(command)

    handlers["log"] = stall

"""The command/result loop between a Lua workflow and Temporal.

Lua code never calls Python. Every shim (``funcs.call``, ``time.sleep``, ``uuid.v4``…)
is Lua that hands a *command* table to the driver through the sandbox's
``yield_command``; the whole Lua coroutine stack suspends, and the driver answers:

- an *immediate* command (``time.now``, ``uuid.v4``, ``log``…) is answered on the spot
  and the same Lua thread resumes at once, inside the same workflow task;
- a *blocking* command (an activity, a durable timer) becomes an asyncio task on the
  workflow's deterministic event loop; the Lua thread waits until it completes.

Replies always start with a status: ``true, values…`` or ``false, message`` — the Lua
side of the shim turns the latter into ``error(message, level)`` so the error points at
the user's line, not at the shim.

Several Lua threads may wait at once (``funcs.async`` futures today; ``coroutine.spawn``
and channels later): every started operation gets a sequence number, and when several
complete in the same activation their waiters resume in sequence order, so a replay
resumes Lua in exactly the order the original run did.
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

import lupa.lua54 as lupa

__all__ = ["Blocking", "Handler", "Reply", "ShimError", "WorkflowDriver"]

#: What Lua receives after the ``true`` status.
Reply = tuple[Any, ...]


@dataclass(frozen=True)
class Blocking:
    """A handler's answer for a blocking command: the Lua thread waits for ``work``.

    Handlers read everything they need from the command table *before* building
    ``work``: Lua keeps running (and may change that table) while the work waits.
    """

    work: Coroutine[Any, Any, Reply]


#: A command handler: called with the command table, answers now (a Reply) or later (Blocking).
Handler = Callable[[Any], "Reply | Blocking"]


class ShimError(Exception):
    """A misuse of a shim (bad argument, unknown handle): raised in Lua at the caller's line."""


@dataclass
class _Operation:
    """A started blocking operation and the Lua threads waiting for its reply."""

    seq: int
    task: asyncio.Task[Reply]
    waiters: list[Any] = field(default_factory=list)


class WorkflowDriver:
    """Runs a Lua function to completion, answering the commands its shims yield."""

    def __init__(self, sandbox: Any, handlers: Mapping[str, Handler]) -> None:
        self.sandbox = sandbox
        self.handlers = dict(handlers)
        self._operations: dict[int, _Operation] = {}
        self._next_seq = 1
        #: Lua threads ready to run, with the values to resume them with (FIFO = deterministic)
        self._ready: deque[tuple[Any, tuple[Any, ...]]] = deque()
        #: operations completed since the driver last woke up, in completion order
        self._completed: list[int] = []
        self._wakeup: asyncio.Future[None] | None = None

    # ----------------------------------------------------------------- public API

    async def run(self, fn: Any, *args: Any) -> tuple[Any, ...]:
        """Run ``fn(*args)`` as the main Lua thread; return its return values.

        Lua errors and sandbox limits propagate as the sandbox raised them
        (runner.failures.LuaRuntimeError / LimitExceeded); the caller decides what
        they mean for the workflow.
        """
        self.sandbox.begin_task()
        main = self.sandbox.start(fn)
        self._ready.append((main, args))
        while True:
            while self._ready:
                thread, values = self._ready.popleft()
                finished, results = self._step(thread, values)
                if finished and thread is main:
                    return results
            await self._wait_for_completions()
            # A new workflow activation: the instruction budget is per workflow task.
            self.sandbox.begin_task()

    def start_operation(self, work: Coroutine[Any, Any, Reply]) -> int:
        """Start a blocking operation without waiting for it; return its handle (for futures)."""
        seq = self._next_seq
        self._next_seq += 1
        task = asyncio.get_running_loop().create_task(work)
        self._operations[seq] = _Operation(seq=seq, task=task)
        task.add_done_callback(functools.partial(self._on_done, seq))
        return seq

    def await_operation(self, handle: int, thread: Any) -> Reply | None:
        """Make ``thread`` wait for ``handle``; return the reply at once if it is already done."""
        operation = self._operations.get(handle)
        if operation is None:
            raise ShimError(f"unknown or already consumed operation handle {handle!r}")
        if operation.task.done() and handle not in self._completed:
            del self._operations[handle]  # a reply is delivered once; Lua futures cache it
            return _reply_of(operation.task)
        operation.waiters.append(thread)
        return None

    # ----------------------------------------------------------------- internals

    def _step(self, thread: Any, values: tuple[Any, ...]) -> tuple[bool, tuple[Any, ...]]:
        """Resume ``thread`` and answer immediate commands until it blocks or finishes."""
        while True:
            finished, results = self.sandbox.resume(thread, *values)
            if finished:
                return True, results
            command = results[0]
            reply = self._dispatch(thread, command)
            if reply is None:
                return False, ()  # the thread now waits for an operation
            values = reply

    def _dispatch(self, thread: Any, command: Any) -> tuple[Any, ...] | None:
        """Answer one command: a status-prefixed reply, or None when the thread must wait."""
        op = command["op"] if _is_table(command) else None
        try:
            if op == "await":
                return self.await_operation(command["handle"], thread)
            if op == "coroutine.spawn":
                self._ready.append((self.sandbox.start(command["fn"]), ()))
                return (True,)
            handler = self.handlers.get(op) if isinstance(op, str) else None
            if handler is None:
                raise ShimError(f"unknown driver command {op!r}")
            reply = handler(command)
            if isinstance(reply, Blocking):
                handle = self.start_operation(reply.work)
                return self.await_operation(handle, thread)
            _check_reply(str(op), reply)
            return (True, *reply)
        except ShimError as exc:
            return (False, str(exc))

    def _on_done(self, seq: int, _task: asyncio.Task[Reply] | None = None) -> None:
        self._completed.append(seq)
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    async def _wait_for_completions(self) -> None:
        """Sleep until at least one operation completes, then queue its waiters in seq order."""
        if not self._completed:
            if not any(op.waiters for op in self._operations.values()):
                raise RuntimeError("the Lua workflow is blocked but waits for nothing (driver bug)")
            self._wakeup = asyncio.get_running_loop().create_future()
            await self._wakeup
            self._wakeup = None
        for seq in sorted(self._completed):
            operation = self._operations[seq]
            reply = _reply_of(operation.task)
            for waiter in operation.waiters:
                self._ready.append((waiter, reply))
            if operation.waiters:
                # A consumed operation is forgotten; a future nobody awaited yet stays.
                del self._operations[seq]
        self._completed.clear()


def _reply_of(task: asyncio.Task[Reply]) -> tuple[Any, ...]:
    """The status-prefixed reply of a finished operation (ShimError becomes a Lua error)."""
    try:
        reply = task.result()
    except ShimError as exc:
        return (False, str(exc))
    _check_reply("operation", reply)
    return (True, *reply)


_PLAIN = (str, bytes, int, float, bool, type(None))


def _check_reply(op: str, reply: Reply) -> None:
    """Only Lua values and plain scalars go back to Lua: a Python object must never become reachable."""
    for value in reply:
        if not isinstance(value, _PLAIN) and lupa.lua_type(value) is None:
            raise TypeError(f"driver bug: handler {op!r} answered with a Python {type(value).__name__}")


def _is_table(value: Any) -> bool:
    try:
        value["op"]
    except Exception:
        return False
    return True

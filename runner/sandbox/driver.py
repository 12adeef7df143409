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

The driver keeps the run's quotas (runner.sandbox.quotas, docs/sandbox.md): channels and
``coroutine.spawn`` threads alive, values queued in channels, and the commands (with their payload
bytes) each workflow task sends; a command past one fails the run with LIMIT_EXCEEDED at the Lua
line that sent it. Uncaught Lua errors leave it with their texts cut to ``error_bytes``.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

from runner.sandbox.c_locale import pin_c_locale
from runner.sandbox.channels import Channel, ChannelError, Select
from runner.sandbox.failures import FlowFailure, LuaRuntimeError, ShimError, ShimFailure
from runner.sandbox.quotas import QueueMeter, QuotaExceeded, bounded_error, quota_exceeded
from runner.sandbox.values import command_op, describe, flag, integer, is_lua_object, lua_field, lua_function

__all__ = ["Blocking", "Handler", "Reply", "ShimError", "ShimFailure", "WorkflowDriver", "canceled_failure",
           "read_only", "run_until_done", "run_until_done_async"]

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

#: The attribute :func:`read_only` sets on a handler (on a method's function).
_READ_ONLY = "_flowctl_read_only"


def read_only(handler: Handler) -> Handler:
    """Mark ``handler`` as one that only reads (the time, the run's info): queries may use it.

    A query handler or update validator runs outside the workflow's history: Temporal does
    not replay it, so a command there that changed the run (a listener, a monitor, a random
    draw, a memo) would make the next replay differ from the run.
    """
    setattr(getattr(handler, "__func__", handler), _READ_ONLY, True)
    return handler


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
        #: the run's quotas (SandboxLimits), and what counts against them
        self.limits = sandbox.limits
        self.queue = QueueMeter(self.limits)
        #: live channels by id: Lua's (channel.new) count up from 1, the ones Python feeds down from -1
        self.channels: dict[int, Channel] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._next_channel = 1
        self._next_fed = -1
        #: what a channel the driver forgot still answers (made on first use): closed (Lua's), or nothing
        #: ever (a spent timer's)
        self._closed: Channel | None = None
        self._never: Channel | None = None
        #: coroutine.spawn threads alive; commands and their payload bytes in this workflow task
        self._spawned: set[Any] = set()
        self._commands = 0
        self._task_payload = 0
        #: set once Temporal asked the workflow to cancel; blocking calls then fail with CANCELED
        self.cancel_requested = False
        #: called (once) when cancellation arrives, after in-flight operations were cancelled
        self.on_cancel: list[Callable[[], None]] = []
        #: set by abort(): the run stops with this failure at the next chance
        self._abort: FlowFailure | None = None
        #: which workflow task is running (Temporal's history length): the instruction budget is
        #: per task, shared by every wake-up within it; None: every wake-up is a task of its own
        self.task_id: Callable[[], object] | None = None
        #: called at the start of every later workflow task (may raise to fail the task)
        self.before_task: list[Callable[[], None]] = []
        #: called after each workflow task with the Lua CPU seconds it used (metrics)
        self.after_task: list[Callable[[float], None]] = []
        #: Lua threads whose results someone awaits (update handlers)
        self._calls: dict[Any, asyncio.Future[tuple[Any, ...]]] = {}

    # ----------------------------------------------------------------- public API

    async def run(self, fn: Any, *args: Any) -> tuple[Any, ...]:
        """Run ``fn(*args)`` as the main Lua thread; return its return values.

        Lua errors and sandbox limits propagate as the sandbox raised them
        (runner.sandbox.failures.LuaRuntimeError / LimitExceeded); the caller decides what
        they mean for the workflow.
        """
        self._begin_task()
        task = self.task_id() if self.task_id is not None else None
        main = self.sandbox.start(fn)
        self._ready.append((main, args))
        while True:
            started = time.thread_time()
            while self._ready:
                if self._abort is not None:
                    raise self._abort
                thread, values = self._ready.popleft()
                call = self._calls.pop(thread, None)
                try:
                    finished, results = self._step(thread, values)
                except LuaRuntimeError as exc:
                    if call is None:
                        raise
                    call.set_exception(exc)  # an update handler failed: the update fails, not the run
                    continue
                if finished and thread == main:
                    for report in self.after_task:  # the last task's Lua time counts too
                        report(time.thread_time() - started)
                    return results
                if finished:
                    self._spawned.discard(thread)
                if call is not None:
                    if finished:
                        call.set_result(results)
                    else:
                        self._calls[thread] = call
            if self._abort is not None:
                raise self._abort
            for report in self.after_task:
                report(time.thread_time() - started)
            self.sandbox.park()
            await self._wait_for_completions()
            if self.task_id is not None and self.task_id() == task:
                continue  # woken up again within the same workflow task: the same budget
            # A new workflow task: a fresh instruction budget, and no command sent yet.
            task = self.task_id() if self.task_id is not None else None
            self._begin_task()
            for hook in self.before_task:
                hook()

    def call(self, fn: Any, *args: Any) -> asyncio.Future[tuple[Any, ...]]:
        """Run ``fn(*args)`` as another Lua thread (an update handler); the future gets its results."""
        thread = self.sandbox.start(fn)
        future: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()
        self._calls[thread] = future
        self.wake(thread, args)
        return future

    def call_now(self, fn: Any, *args: Any) -> tuple[Any, ...]:
        """Run ``fn(*args)`` to completion right now (queries, update validators): it may only read.

        A command that waits or changes the run fails there as a ``NONDETERMINISTIC_CALL`` error.
        """
        with self.sandbox.own_budget():  # neither resets nor uses up the task's budget
            return run_until_done(self.sandbox, self.sandbox.start(fn), self._answer_now, *args)

    def command(self, what: str, payload: int = 0) -> None:
        """Count a command Temporal will be sent in this workflow task (a timer, an activity, a child,
        a signal...) and the payload bytes it carries; QuotaExceeded past ``commands_per_task`` or
        ``task_payload_bytes`` (call it before starting the work)."""
        if self._commands >= self.limits.commands_per_task:
            raise quota_exceeded("commands_per_task", self.limits, f"{what} would be command "
                                 f"{self._commands + 1:,} of this workflow task")
        if self._task_payload + payload > self.limits.task_payload_bytes:
            raise quota_exceeded("task_payload_bytes", self.limits, f"{what} would bring this workflow task's "
                                 f"payloads to {self._task_payload + payload:,} bytes")
        self._commands += 1
        self._task_payload += payload

    def _begin_task(self) -> None:
        self.sandbox.begin_task()
        self._commands = self._task_payload = 0

    def start_operation(self, work: Coroutine[Any, Any, Reply]) -> int:
        """Start a blocking operation without waiting for it; return its handle (for futures)."""
        seq = self._next_seq
        self._next_seq += 1
        task = asyncio.get_running_loop().create_task(work)
        self._operations[seq] = _Operation(seq=seq, task=task)
        task.add_done_callback(functools.partial(self._on_done, seq))
        return seq

    def start_background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` on the workflow's loop with no Lua thread waiting (timers feeding channels...)."""
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def await_operation(self, handle: int, thread: Any) -> Reply | None:
        """Make ``thread`` wait for ``handle``; return the reply at once if it is already done."""
        operation = self._operations.get(handle)
        if operation is None:
            raise ShimError(f"unknown or already consumed operation handle {handle}")
        if operation.task.done() and handle not in self._completed:
            del self._operations[handle]  # a reply is delivered once; Lua futures cache it
            return _reply_of(self.sandbox, operation.task)
        operation.waiters.append(thread)
        return None

    # ----------------------------------------------------------------- internals

    def _answer_now(self, command: Any) -> Reply:
        """A command of a query or update validator: only what answers at once and changes nothing."""
        op = command_op(command)
        handler = self.handlers.get(op) if op is not None else None
        if handler is None or not getattr(handler, _READ_ONLY, False):
            raise ShimFailure(FlowFailure(
                "NONDETERMINISTIC_CALL", f"{op or 'this command'} cannot be used in a query handler or update "
                "validator: they may only read (what they do is not in the workflow's history, so a change or a "
                "wait there would make a replay differ); do it in the workflow or an update handler",
                retryable=False))
        reply = handler(command)
        if isinstance(reply, Blocking):
            reply.work.close()
            raise ShimError(f"{op} cannot be used in a query or update validator (it waits)")
        _check_reply(op or "", reply)
        return reply

    def _step(self, thread: Any, values: tuple[Any, ...]) -> tuple[bool, tuple[Any, ...]]:
        """Resume ``thread`` and answer immediate commands until it blocks or finishes."""
        pin_c_locale()
        while True:
            try:
                finished, results = self.sandbox.resume(thread, *values)
            except LuaRuntimeError as exc:
                raise bounded_error(exc, self.limits) from None
            if finished:
                return True, results
            command = results[0]
            reply = self._dispatch(thread, command)
            if reply is None:
                return False, ()  # the thread now waits for an operation
            values = reply

    def _dispatch(self, thread: Any, command: Any) -> tuple[Any, ...] | None:
        """Answer one command: a status-prefixed reply, or None when the thread must wait."""
        op = command_op(command)
        try:
            if op == "await":
                return self.await_operation(integer(command, "handle", "await handle"), thread)
            if op == "coroutine.spawn":
                fn = lua_function(command, "fn", "coroutine.spawn")
                if len(self._spawned) >= self.limits.coroutines:
                    raise quota_exceeded("coroutines", self.limits)
                spawned = self.sandbox.start(fn)
                self._spawned.add(spawned)
                self._ready.append((spawned, ()))
                return (True,)
            if op is not None and op.startswith("channel."):
                return self._channel_command(op, command, thread)
            handler = self.handlers.get(op) if op is not None else None
            if handler is None:
                raise ShimError(f"unknown driver command {op!r}")
            reply = handler(command)
            if isinstance(reply, Blocking):
                handle = self.start_operation(reply.work)
                return self.await_operation(handle, thread)
            _check_reply(str(op), reply)
            return (True, *reply)
        except ShimFailure as exc:
            return (False, self.sandbox.error_object(exc.failure))
        except (ShimError, ChannelError) as exc:
            return (False, str(exc))
        except QuotaExceeded as exc:  # at the user's line that sent the command
            raise exc.located(self.sandbox.where(thread)) if exc.where == "?" else exc from None

    # ----------------------------------------------------------------- channels

    def new_channel(self, capacity: int | None, *, lua_sends: bool = True, once: bool = False) -> Channel:
        """A channel Lua can use by id (``capacity`` None: unbounded, for signals and events).

        ``lua_sends=False``: only Python puts values in (a timer, messages); Lua only receives.
        ``once``: Python puts one value, ever (a timer). QuotaExceeded past the ``channels`` quota.
        """
        if len(self.channels) >= self.limits.channels:
            raise quota_exceeded("channels", self.limits)
        if lua_sends:
            channel_id, self._next_channel = self._next_channel, self._next_channel + 1
        else:
            channel_id, self._next_fed = self._next_fed, self._next_fed - 1
        channel = Channel(channel_id, capacity, self.wake, lua_sends=lua_sends, meter=self.queue, once=once)
        self.channels[channel.id] = channel
        return channel

    def deliver(self, channel: Channel, value: Any, source: str) -> None:
        """Put ``value`` in ``channel`` from outside Lua (``source``: ``a timer``, ``signal 'approve'``...).

        Past a queue quota the run stops with LIMIT_EXCEEDED at ``source`` (at its next chance:
        nothing waits here).
        """
        try:
            channel.put(value)
        except QuotaExceeded as exc:
            self.abort(exc.located(source))
        self._release(channel)

    def _release(self, channel: Channel) -> None:
        """Forget a channel nothing can happen on any more (it no longer counts as alive)."""
        if channel.settled and self.channels.get(channel.id) is channel:
            del self.channels[channel.id]

    def abort(self, failure: FlowFailure) -> None:
        """Stop the run with ``failure`` (a linked child died and links are not trapped)."""
        if self._abort is None:
            self._abort = failure
        self._notify()

    def wake(self, thread: Any, reply: tuple[Any, ...]) -> None:
        """Queue a parked Lua thread to resume with ``reply`` (from Lua, a signal, a timer...)."""
        self._ready.append((thread, reply))
        self._notify()

    def _channel(self, command: Any) -> Channel:
        channel_id = lua_field(command, "id", "channel")
        if not isinstance(channel_id, int) or isinstance(channel_id, bool):
            raise ShimError(f"unknown channel: its id is {describe(channel_id)}, not an integer")
        channel = self.channels.get(channel_id)
        if channel is None:
            if 0 < channel_id < self._next_channel:  # closed and drained, then forgotten
                self._closed = self._closed or Channel(0, 0, self.wake, closed=True)
                return self._closed
            if self._next_fed < channel_id < 0:  # a timer whose value was taken
                self._never = self._never or Channel(0, 0, self.wake, lua_sends=False)
                return self._never
            raise ShimError(f"unknown channel {channel_id}")
        return channel

    def _channel_command(self, op: str, command: Any, thread: Any) -> tuple[Any, ...] | None:
        if op == "channel.new":
            size = lua_field(command, "size", "channel.new")
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise ShimError("channel.new: the buffer size must be a non-negative integer")
            return (True, self.new_channel(size).id)
        if op == "channel.send":
            # a table stays in Lua (Python hands it on unread); a string must be UTF-8 to cross
            channel = self._channel(command)
            _check_sendable(channel, "ch:send")
            return channel.send(thread, lua_field(command, "value", "ch:send value"))
        if op == "channel.receive":
            channel = self._channel(command)
            reply = channel.receive(thread)
            self._release(channel)
            return reply
        if op == "channel.close":
            channel = self._channel(command)
            _check_sendable(channel, "ch:close")
            channel.close()
            self._release(channel)
            return (True,)
        if op == "channel.select":
            return self._select(command, thread)
        raise ShimError(f"unknown driver command {op!r}")

    def _select(self, command: Any, thread: Any) -> tuple[Any, ...] | None:
        """The first ready case in written order; else the default; else park on every case."""
        cases = []
        count = integer(command, "n", "channel.select: the number of cases")
        listed = lua_field(command, "cases", "channel.select cases")
        for index in range(1, count + 1):
            case = lua_field(listed, index, f"channel.select: case {index}")
            what = f"channel.select: case {index}"
            is_send, channel = flag(case, "send", what), self._channel(case)
            if is_send:
                _check_sendable(channel, what)
            cases.append((index, is_send, channel, lua_field(case, "value", what)))
        for index, is_send, channel, value in cases:
            if is_send and channel.can_send():
                reply = channel.send(thread, value)
                return (True, index, None, True) if reply is not None else None
            if not is_send and channel.can_receive():
                reply = channel.receive(thread)
                assert reply is not None
                self._release(channel)
                return (True, index, reply[1], reply[2])
        if flag(command, "default", "channel.select default"):
            return (True, 0, None, False)
        if not cases:
            raise ShimError("channel.select: no cases and no default (it would wait forever)")
        waiting = Select(thread)
        for index, is_send, channel, value in cases:
            if is_send:
                channel.send(thread, value, select=waiting, case=index)
            else:
                channel.receive(thread, select=waiting, case=index)
        return None

    def _on_done(self, seq: int, _task: asyncio.Task[Reply] | None = None) -> None:
        self._completed.append(seq)
        self._notify()

    def _notify(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    async def _wait_for_completions(self) -> None:
        """Sleep until an operation completes or a thread is woken; queue waiters in seq order.

        With nothing in flight the run simply waits (for a signal, an update or cancellation).
        """
        if not self._completed and not self._ready:
            self._wakeup = asyncio.get_running_loop().create_future()
            try:
                await self._wakeup
            except asyncio.CancelledError:
                self._cancel()
            finally:
                self._wakeup = None
        for seq in sorted(self._completed):
            operation = self._operations[seq]
            reply = _reply_of(self.sandbox, operation.task)
            for waiter in operation.waiters:
                self._ready.append((waiter, reply))
            if operation.waiters:
                # A consumed operation is forgotten; a future nobody awaited yet stays.
                del self._operations[seq]
        self._completed.clear()

    def _cancel(self) -> None:
        """Temporal cancelled the workflow: every blocking call in flight fails with CANCELED."""
        if self.cancel_requested:
            return
        self.cancel_requested = True
        for operation in self._operations.values():
            operation.task.cancel()
        canceled = (False, self.sandbox.error_object(canceled_failure()))
        for channel in [*self.channels.values(), *([self._never] if self._never else [])]:
            channel.interrupt(canceled)
        for hook in self.on_cancel:
            hook()


def run_until_done(sandbox: Any, thread: Any, answer: Callable[[Any], Reply], *values: Any) -> tuple[Any, ...]:
    """Resume ``thread`` (with ``values`` first) until it returns; its results.

    Each command it yields is answered ``(True, *answer(command))``, or ``(False, message)``
    when ``answer`` raises ShimError; anything else ``answer`` raises ends the run. For Lua
    that runs to its end in one go: an activity call, a query, a test file loading, a mock.
    """
    async def answer_at_once(command: Any) -> Reply:
        return answer(command)

    # One loop serves both: a coroutine whose awaits never wait finishes on its first send().
    steps = run_until_done_async(sandbox, thread, answer_at_once, *values)
    try:
        steps.send(None)
    except StopIteration as done:
        return tuple(done.value)
    steps.close()
    raise RuntimeError("run_until_done: an answer that never waits waited")


async def run_until_done_async(sandbox: Any, thread: Any, answer: Callable[[Any], Awaitable[Reply]],
                               *values: Any) -> tuple[Any, ...]:
    """:func:`run_until_done` whose ``answer`` may wait (``test.run`` in the Lua test runner)."""
    pin_c_locale()
    while True:
        try:
            finished, results = sandbox.resume(thread, *values)
        except LuaRuntimeError as exc:
            raise bounded_error(exc, sandbox.limits) from None
        if finished:
            return results
        try:
            values = (True, *await answer(results[0]))
        except ShimFailure as exc:
            values = (False, sandbox.error_object(exc.failure))
        except ShimError as exc:
            values = (False, str(exc))
        except QuotaExceeded as exc:  # at the user's line that sent the command
            raise exc.located(sandbox.where(thread)) if exc.where == "?" else exc from None


def canceled_failure(what: str = "the workflow was canceled") -> FlowFailure:
    """The non-retryable CANCELED failure a blocking call gets once cancellation was requested."""
    return FlowFailure("CANCELED", what, retryable=False)


def _reply_of(sandbox: Any, task: asyncio.Task[Reply]) -> tuple[Any, ...]:
    """The status-prefixed reply of a finished operation (ShimError becomes a Lua error)."""
    try:
        reply = task.result()
    except asyncio.CancelledError:
        return (False, sandbox.error_object(canceled_failure()))
    except ShimFailure as exc:
        return (False, sandbox.error_object(exc.failure))
    except ShimError as exc:
        return (False, str(exc))
    _check_reply("operation", reply)
    return (True, *reply)


_PLAIN = (str, bytes, int, float, bool, type(None))


def _check_sendable(channel: Channel, what: str) -> None:
    if not channel.lua_sends:
        raise ShimError(f"{what}: this channel only receives (time.after, process.listen, process.inbox and "
                        "process.events deliver what happens to the workflow; make your own with channel.new)")


def _check_reply(op: str, reply: Reply) -> None:
    """Only Lua values and plain scalars go back to Lua: a Python object must never become reachable."""
    for value in reply:
        if not isinstance(value, _PLAIN) and not is_lua_object(value):
            raise TypeError(f"driver bug: handler {op!r} answered with a Python {type(value).__name__}")

"""Channels between the Lua threads of one workflow run, kept by the driver (docs/lua-api.md).

A Lua thread that cannot complete a send or receive parks in the channel; another Lua
thread, a signal, a timer or a child's exit wakes it. Everything happens on the
workflow's deterministic event loop, and parked threads are served first come, first
served, so a replay wakes them in exactly the original order. ``select`` takes the first
ready case in the order written (Go picks at random; a workflow must not).

Replies follow the driver's convention: a tuple starting with ``True`` and the values Lua
receives, or ``(False, message)`` to raise a Lua error at the caller.

What waits in buffers counts against the run's ``queued_messages``/``queued_bytes`` quotas (a
:class:`~runner.sandbox.quotas.QueueMeter`); a channel that is :attr:`Channel.settled` can no longer
change and the driver forgets it (docs/sandbox.md, Quotas).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from runner.sandbox.quotas import QueueMeter, queued_size

__all__ = ["Channel", "ChannelError", "Select", "Waker"]

#: wake(thread, reply): queue a parked Lua thread to be resumed with ``reply``
Waker = Callable[[Any, tuple[Any, ...]], None]


class ChannelError(Exception):
    """Misuse raised as a Lua error at the caller (send on a closed channel, ...)."""


@dataclass(eq=False)
class Select:
    """One parked ``channel.select``: its thread, and whether a case already fired."""

    thread: Any
    done: bool = False


@dataclass(eq=False)
class _Waiter:
    """A Lua thread parked on a channel (a send, a receive, or one case of a select)."""

    thread: Any
    #: the select this wait belongs to, and the index of its case (1-based, as Lua sees it)
    select: Select | None = None
    case: int = 0
    value: Any = None

    @property
    def live(self) -> bool:
        return self.select is None or not self.select.done

    def reply(self, value: Any, ok: bool) -> tuple[Any, ...]:
        if self.select is not None:
            self.select.done = True
            return (True, self.case, value, ok)
        return (True, value, ok)


@dataclass(eq=False)
class Channel:
    """A Go-style channel: ``capacity`` buffered values (0 = rendezvous; None = unbounded)."""

    id: int
    capacity: int | None
    wake: Waker
    #: False for a channel only Python feeds (time.after, process.listen/inbox/events): Lua only receives
    lua_sends: bool = True
    #: what counts the values waiting in the buffer (None: nothing counts them)
    meter: QueueMeter | None = None
    #: Python delivers one value, ever (time.after); ``spent`` once a receiver took it
    once: bool = False
    spent: bool = False
    #: the buffered values and the parked threads: the shared empty tuple until a first one comes
    #: (an empty deque costs ~760 bytes, and many channels never hold one: a cached run's process events)
    buffer: deque[Any] = field(default=cast("deque[Any]", ()))
    closed: bool = False
    receivers: deque[_Waiter] = field(default=cast("deque[_Waiter]", ()))
    senders: deque[_Waiter] = field(default=cast("deque[_Waiter]", ()))

    # ----------------------------------------------------------- readiness (for select)

    def can_receive(self) -> bool:
        return bool(self.buffer) or self._first_live(self.senders) is not None or self.closed

    def can_send(self) -> bool:
        if self.closed:
            return True  # it fails at once, which is what select must report
        if self._first_live(self.receivers) is not None:
            return True
        return self.capacity is None or len(self.buffer) < self.capacity

    @property
    def settled(self) -> bool:
        """Nothing can happen on it any more: closed (or ``once`` and spent), nothing buffered, nobody parked.

        Lua may still hold it: a receive then finds it closed (or waits for ever, once spent).
        """
        return ((self.closed or self.spent) and not self.buffer and self._first_live(self.receivers) is None
                and self._first_live(self.senders) is None)

    # ----------------------------------------------------------- operations

    def send(self, thread: Any, value: Any, *, select: Select | None = None, case: int = 0) -> tuple[Any, ...] | None:
        """Deliver or buffer ``value``; None when ``thread`` must park until a receiver comes."""
        if self.closed:
            raise ChannelError("send on a closed channel")
        receiver = self._pop_live(self.receivers)
        if receiver is not None:
            self.wake(receiver.thread, receiver.reply(value, True))
            return self._sent(select, case)
        if self.capacity is None or len(self.buffer) < self.capacity:
            self._queue(value)
            return self._sent(select, case)
        self.senders = _grown(self.senders)
        self.senders.append(_Waiter(thread, select, case, value))
        return None

    def receive(self, thread: Any, *, select: Select | None = None, case: int = 0) -> tuple[Any, ...] | None:
        """``(True, value, ok)`` now, or None when ``thread`` must park until a sender comes."""
        waiter = _Waiter(thread, select, case)
        if self.buffer:
            value = self._take()
            sender = self._pop_live(self.senders)
            if sender is not None:  # a parked sender's value takes the freed buffer slot
                self._queue(sender.value, check=False)
                self.wake(sender.thread, self._sent(sender.select, sender.case))
            self.spent = self.once
            return waiter.reply(value, True)
        sender = self._pop_live(self.senders)
        if sender is not None:
            self.wake(sender.thread, self._sent(sender.select, sender.case))
            return waiter.reply(sender.value, True)
        if self.closed:
            return waiter.reply(None, False)
        self.receivers = _grown(self.receivers)
        self.receivers.append(waiter)
        return None

    def put(self, value: Any) -> None:
        """Deliver from outside Lua (a signal, a timer, a child's exit): never blocks.

        Raises QuotaExceeded when the value is one too many to queue; it is kept all the same
        (the caller stops the run: runner.sandbox.driver ``WorkflowDriver.deliver``).
        """
        receiver = self._pop_live(self.receivers)
        if receiver is not None:
            self.spent = self.once
            self.wake(receiver.thread, receiver.reply(value, True))
        else:
            self.buffer = _grown(self.buffer)
            self.buffer.append(value)
            if self.meter is not None:
                self.meter.add(queued_size(value))

    def close(self) -> None:
        if self.closed:
            raise ChannelError("close of a closed channel")
        self.closed = True
        while (receiver := self._pop_live(self.receivers)) is not None:
            self.wake(receiver.thread, receiver.reply(None, False))
        while (sender := self._pop_live(self.senders)) is not None:
            self.wake(sender.thread, (False, "send on a closed channel"))

    def interrupt(self, reply: tuple[Any, ...]) -> None:
        """Wake every parked thread with ``reply`` (cancellation: their receive/send/select fails)."""
        for waiters in (self.receivers, self.senders):
            while (waiter := self._pop_live(waiters)) is not None:
                if waiter.select is not None:
                    waiter.select.done = True
                self.wake(waiter.thread, reply)

    # ----------------------------------------------------------- helpers

    def _queue(self, value: Any, *, check: bool = True) -> None:
        """Buffer a value Lua sent (QuotaExceeded at the sender, before it is kept, past a quota)."""
        if self.meter is not None:
            self.meter.add(queued_size(value), check=check)
        self.buffer = _grown(self.buffer)
        self.buffer.append(value)

    def _take(self) -> Any:
        value = self.buffer.popleft()
        if self.meter is not None:
            self.meter.remove(queued_size(value))
        return value

    @staticmethod
    def _sent(select: Select | None, case: int) -> tuple[Any, ...]:
        if select is not None:
            select.done = True
            return (True, case, None, True)
        return (True,)

    @staticmethod
    def _first_live(waiters: deque[_Waiter]) -> _Waiter | None:
        while waiters and not waiters[0].live:
            waiters.popleft()  # a select that already fired elsewhere
        return waiters[0] if waiters else None

    def _pop_live(self, waiters: deque[_Waiter]) -> _Waiter | None:
        first = self._first_live(waiters)
        if first is not None:
            waiters.popleft()
        return first


def _grown(items: deque[Any]) -> deque[Any]:
    """``items``, or a new deque while it is still the empty tuple a channel starts with."""
    return items if isinstance(items, deque) else deque()

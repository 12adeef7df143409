"""The ``process`` module: messages (signals), children, monitors and links (docs/lua-api.md).

Wire format, so any Temporal client interoperates: a message is a signal whose name is
the topic and whose first argument is the payload; a flowctl workflow adds a second
argument ``{"from": workflow_id}``, which becomes ``msg:from()``. Messages that arrive
before anyone listens wait in the mailbox, in order, and are never lost — not even across
``workflow.continue_as_new``, which carries them into the next run (memo
``flowctl.messages``, delivered before any new signal).

Children: ``spawn`` / ``exec`` start Temporal child workflows (pinned to the child
entry's current revision, with the spawner's context and start messages in their memo).
A child is monitored from the start: its exit arrives on ``process.events()`` as EXIT
(``result.value`` / ``result.error``) unless ``unmonitor``ed; a *linked* child that ends
abnormally sends LINK_DOWN instead when ``trap_links`` is set, and otherwise fails this
workflow with the child's error. ``terminate`` runs an internal activity (a workflow
cannot terminate another by itself); ``cancel`` requests cancellation. A workflow may monitor,
link, cancel and terminate only the children it spawned; anything else is a NOT_FOUND error
that says so (``process.send`` reaches any workflow: a message asks, it does not command).

Quotas (docs/sandbox.md): listeners per run; messages waiting in the mailbox count with the ones in
channel buffers (the driver's QueueMeter), with their payload bytes; signals, child starts, cancels
and terminations count as commands of the workflow task that sends them.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import deque
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import (
    RetryPolicy,
)
from temporalio.exceptions import ActivityError, ChildWorkflowError, WorkflowAlreadyStartedError

from registry.durations import parse_duration
from registry.errors import FlowError
from registry.revision import Revision
from runner.sandbox.channels import Channel
from runner.sandbox.driver import Blocking, Handler, Reply, ShimError, ShimFailure, canceled_failure, read_only
from runner.sandbox.failures import FlowFailure
from runner.sandbox.quotas import QuotaExceeded, payload_size, quota_exceeded
from runner.sandbox.values import command_op, lua_args, lua_field, lua_payload, lua_record, lua_value, text
from runner.shims.run_context import WorkflowRun
from runner.temporal.failures import contract_failure, failure_from_temporal
from runner.temporal.memo import CONTEXT_MEMO, MESSAGES_MEMO, REVISION_MEMO
from runner.temporal.options import conflict_policy, normalize, start_kwargs

__all__ = ["ProcessState", "handlers", "internal_activity_options"]

#: Internal activity types any flowctl worker runs (runner/temporal/activities.py).
TERMINATE_ACTIVITY = "flowctl.process.terminate"


@dataclasses.dataclass
class Message:
    """A signal as the mailbox keeps it (plain Python data until a Lua thread takes it)."""

    seq: int
    topic: str
    payload: Any
    #: the sending workflow's id; only ever a string (a memo entry's ``from`` may be anything)
    sender: str | None
    #: the payload's bytes (JSON), counted against the queued_bytes quota while it waits
    size: int = 0


@dataclasses.dataclass
class Child:
    """A child workflow this run started."""

    workflow_id: str
    monitored: bool = True
    #: ``(value, failure)`` once it exited
    exit: tuple[Any, FlowFailure | None] | None = None


class ProcessState:
    """One run's mailbox, children, monitors and links; created when the run starts."""

    def __init__(self, run: WorkflowRun, carried: list[Mapping[str, Any]]) -> None:
        self.run = run
        self.driver = run.driver
        self._seq = 0
        #: messages nobody listens to yet, by arrival
        self.pending: deque[Message] = deque()
        #: topic -> channel fed with that topic's messages; the inbox takes every other topic
        self.listeners: dict[str, Channel] = {}
        self.inbox: Channel | None = None
        self.events: Channel = self.driver.new_channel(None, lua_sends=False)
        self.children: dict[str, Child] = {}
        self.links: set[str] = set()
        self.trap_links = False
        for item in carried:
            # start messages come from a memo any client can write: only well-formed ones count
            topic = item.get("topic")
            if isinstance(topic, str) and topic:
                self.deliver(topic, item.get("payload"), item.get("from"))

    # ------------------------------------------------------------------ messages

    def deliver(self, topic: str, payload: Any, sender: Any, *, size: int | None = None,
                from_lua: bool = False) -> None:
        """A signal arrived (or a carried/start message, or a send to itself ``from_lua``): route it, or keep it.

        Past a queue quota a send from Lua raises QuotaExceeded at the sender; a signal stops the run.
        """
        self._seq += 1
        message = Message(self._seq, topic, payload, sender if isinstance(sender, str) else None,
                          payload_size(payload) if size is None else size)
        channel = self.listeners.get(topic) or self.inbox
        if channel is None:
            self.pending.append(message)
            try:
                self.driver.queue.add(message.size)
            except QuotaExceeded as exc:
                if from_lua:
                    raise
                self.driver.abort(exc.located(f"signal {topic!r}"))
        elif from_lua:
            channel.put(self._record(message))
        else:
            self.driver.deliver(channel, self._record(message), f"signal {topic!r}")

    def _record(self, message: Message) -> Any:
        sandbox = self.run.sandbox
        return lua_record(sandbox, {"seq": message.seq, "topic": message.topic, "from": message.sender,
                                    "payload": sandbox.import_(message.payload, f"message {message.topic!r}")})

    def listen(self, topic: str) -> Channel:
        channel = self.listeners.get(topic)
        if channel is None:
            limits = self.driver.limits
            if len(self.listeners) >= limits.listeners:
                raise quota_exceeded("listeners", limits, f"a new topic would be listener {len(self.listeners) + 1:,}")
            channel = self.listeners[topic] = self.driver.new_channel(None, lua_sends=False)
            self._drain(lambda m: m.topic == topic, channel)
        return channel

    def open_inbox(self) -> Channel:
        if self.inbox is None:
            self.inbox = self.driver.new_channel(None, lua_sends=False)
            self._drain(lambda m: m.topic not in self.listeners, self.inbox)
        return self.inbox

    def _drain(self, wanted: Any, channel: Channel) -> None:
        kept: deque[Message] = deque()
        for message in self.pending:
            if wanted(message):
                self.driver.queue.remove(message.size)  # it waits in the channel now: in the Lua heap
                channel.put(self._record(message))
            else:
                kept.append(message)
        self.pending = kept

    def unconsumed(self) -> list[dict[str, Any]]:
        """Every message not yet received by Lua, in arrival order (carried over continue-as-new)."""
        found = [(m.seq, {"topic": m.topic, "payload": m.payload, "from": m.sender}) for m in self.pending]
        sandbox = self.run.sandbox
        for channel in [*self.listeners.values(), *([self.inbox] if self.inbox else [])]:
            for record in channel.buffer:
                plain = sandbox.export(record, "message")
                found.append((plain["seq"], {"topic": plain["topic"], "payload": plain.get("payload"),
                                             "from": plain.get("from")}))
        return [item for _, item in sorted(found, key=lambda pair: pair[0])]

    # ------------------------------------------------------------------ children

    def child_exited(self, child: Child, value: Any, failure: FlowFailure | None) -> None:
        child.exit = (value, failure)
        sandbox = self.run.sandbox
        if failure is not None and child.workflow_id in self.links:
            if not self.trap_links:
                self.driver.abort(FlowFailure(
                    failure.kind, f"linked workflow {child.workflow_id} ended: {failure.message}",
                    retryable=False, details=failure.details, where=failure.where))
                return
            self._event("LINK_DOWN", child.workflow_id, None, failure)
        elif child.monitored:
            self._event("EXIT", child.workflow_id, sandbox.import_(value, "child result"), failure)

    def _event(self, kind: str, sender: str, value: Any, failure: FlowFailure | None) -> None:
        sandbox = self.run.sandbox
        error = sandbox.error_object(failure) if failure is not None else None
        self.driver.deliver(self.events, lua_record(sandbox, {"kind": kind, "from": sender, "value": value,
                                                              "error": error}), f"the exit of {sender}")


@read_only
def _self(_cmd: Any) -> Reply:
    info = workflow.info()
    return (info.workflow_id, info.run_id)


#: the process module's commands but process.self (run-independent: _self)
_COMMANDS = ("process.send", "process.inbox", "process.listen", "process.events", "process.spawn", "process.exec",
             "process.monitor", "process.unmonitor", "process.link", "process.unlink", "process.set_options",
             "process.terminate", "process.cancel")


def handlers(run: WorkflowRun) -> dict[str, Handler]:
    """Command handlers for the process module, bound to one workflow run.

    Every run has them (they answer workflow.exec too), few use them: one dispatcher per run
    binds the real ones on the run's first process command and puts them in the driver's table,
    so later commands reach them directly (~3.5 KiB of closures a run that never sends one does
    not carry; docs/performance.md, issue 17 (part 3)).
    """
    def dispatch(cmd: Any) -> Reply | Blocking:
        bound = _bound(run)
        run.driver.handlers.update(bound)
        return bound[str(command_op(cmd))](cmd)

    return {"process.self": _self, **dict.fromkeys(_COMMANDS, dispatch)}


def _bound(run: WorkflowRun) -> dict[str, Handler]:
    """The process module's command handlers (all but process.self), bound to one workflow run."""
    state: ProcessState = run.process

    def send(cmd: Any) -> Reply | Blocking:
        target = text(cmd, "to", "process.send: the target workflow id", empty=False)
        topic = text(cmd, "topic", "process.send: the topic", empty=False)
        payload, size = lua_payload(run.sandbox, lua_field(cmd, "payload", "process.send"),
                                    f"process.send({topic!r}) payload")
        me = workflow.info().workflow_id
        if target == me:
            state.deliver(topic, payload, me, size=size, from_lua=True)
            return (True, None)
        run.driver.command(f"process.send({topic!r})", size)
        return Blocking(_signal(run, target, topic, payload, me))

    def inbox(_cmd: Any) -> Reply:
        return (state.open_inbox().id,)

    def listen(cmd: Any) -> Reply:
        return (state.listen(text(cmd, "topic", "process.listen: the topic", empty=False)).id,)

    def events(_cmd: Any) -> Reply:
        return (state.events.id,)

    def spawn(cmd: Any) -> Reply | Blocking:
        request = _start_request(run, cmd, "process.spawn")
        refused = _refused_input(run, request)
        if refused is not None:
            return refused
        run.driver.command("process.spawn", request.size)
        return Blocking(_spawn(run, state, request, wait=False))

    def exec_(cmd: Any) -> Reply | Blocking:
        request = _start_request(run, cmd, "process.exec")
        refused = _refused_input(run, request)
        if refused is not None:
            return refused
        run.driver.command("process.exec", request.size)
        return Blocking(_spawn(run, state, request, wait=True))

    def monitor(cmd: Any) -> Reply:
        child = _child(state, cmd, "process.monitor")
        if isinstance(child, tuple):
            return child
        child.monitored = True
        if child.exit is not None:  # already gone: say so at once, like a monitor on a dead process
            state.child_exited(child, *child.exit)
        return (True, None)

    def unmonitor(cmd: Any) -> Reply:
        child = _child(state, cmd, "process.unmonitor")
        if isinstance(child, tuple):
            return child
        child.monitored = False
        return (True, None)

    def link(cmd: Any) -> Reply:
        child = _child(state, cmd, "process.link")
        if isinstance(child, tuple):
            return child
        state.links.add(child.workflow_id)
        if child.exit is not None and child.exit[1] is not None:
            state.child_exited(child, *child.exit)
        return (True, None)

    def unlink(cmd: Any) -> Reply:
        state.links.discard(_target(cmd, "process.unlink"))
        return (True, None)

    def set_options(cmd: Any) -> Reply:
        trap = lua_field(cmd, "trap_links", "process.set_options")
        if trap is not None and not isinstance(trap, bool):
            raise ShimError("process.set_options: trap_links must be true or false")
        if trap is not None:
            state.trap_links = trap
        return (True,)

    def terminate(cmd: Any) -> Reply | Blocking:
        child = _child(state, cmd, "process.terminate")
        if isinstance(child, tuple):
            return child
        # plain data by now (exported): str() of it runs no Lua
        reason = _first_arg(run, cmd, "process.terminate reason") or f"terminated by {workflow.info().workflow_id}"
        run.driver.command("process.terminate")  # an activity
        return Blocking(_terminate(run, child.workflow_id, str(reason)))

    def cancel(cmd: Any) -> Reply | Blocking:
        child = _child(state, cmd, "process.cancel")
        if isinstance(child, tuple):
            return child
        deadline = _first_arg(run, cmd, "process.cancel deadline")
        run.driver.command("process.cancel")
        if deadline is not None:
            run.driver.command("process.cancel deadline")  # a timer, then maybe a termination
        return Blocking(_cancel(run, state, child.workflow_id, deadline))

    return {
        "process.send": send, "process.inbox": inbox, "process.listen": listen,
        "process.events": events, "process.spawn": spawn, "process.exec": exec_, "process.monitor": monitor,
        "process.unmonitor": unmonitor, "process.link": link, "process.unlink": unlink,
        "process.set_options": set_options, "process.terminate": terminate, "process.cancel": cancel,
    }


# ---------------------------------------------------------------------- starting children


@dataclasses.dataclass
class StartRequest:
    revision: Revision
    args: list[Any]
    kwargs: dict[str, Any]
    workflow_id: str
    conflict: str
    messages: list[dict[str, Any]]
    #: payload bytes the start sends (input, start messages, context)
    size: int = 0


def _start_request(run: WorkflowRun, cmd: Any, what: str) -> StartRequest:
    """Everything a child start needs, read now (Lua may change its tables while the start waits)."""
    sandbox = run.sandbox
    entry_id = text(cmd, "entry", f"{what}: the workflow entry ID")
    worker = text(cmd, "worker", f"{what}: the worker entry ID", optional=True)
    name = text(cmd, "name", f"{what}: the name", optional=True)
    try:
        revision = run.source.workflow(run.revision.ref(entry_id))
    except FlowFailure as failure:
        raise ShimFailure(failure) from None
    args = lua_args(sandbox, lua_field(cmd, "args", what), f"{what}({entry_id!r}) input")
    options = lua_value(sandbox, lua_field(cmd, "options", what), f"{what} options") or {}
    context = lua_value(sandbox, lua_field(cmd, "context", what), f"{what} context") or {}
    messages = lua_value(sandbox, lua_field(cmd, "messages", what), f"{what} messages") or []
    if not isinstance(options, dict) or not isinstance(context, dict) or not isinstance(messages, list):
        raise ShimError(f"{what}: options and context must be tables")
    if not all(isinstance(m, dict) and isinstance(m.get("topic"), str) and m["topic"] for m in messages):
        raise ShimError(f"{what}: each start message needs a non-empty string topic")
    defaults = revision.data.get("options") if isinstance(revision.data.get("options"), Mapping) else {}
    try:
        merged = normalize(defaults, options)
        conflict = conflict_policy(merged, explicit_id=bool(merged.get("id") or name))
        kwargs = start_kwargs(merged, child=True)
    except FlowError as exc:
        raise ShimError(f"{what}: {exc.message}" + (f" ({exc.hint})" if exc.hint else "")) from None
    worker_id = run.revision.ref(worker) if worker else revision.worker_id
    try:
        queue = merged.get("task_queue") or run.source.entry(worker_id or "").task_queue
    except FlowFailure as failure:
        raise ShimFailure(failure) from None
    workflow_id = merged.get("id") or name or f"{revision.name.replace('_', '-')}-{workflow.uuid4().hex[:12]}"
    memo: dict[str, Any] = {REVISION_MEMO: revision.digest}
    full_context = {**run.context, **context}
    if full_context:
        memo[CONTEXT_MEMO] = full_context
    plain_messages = [{"topic": m["topic"], "payload": m.get("payload"), "from": workflow.info().workflow_id}
                      for m in messages]
    if plain_messages:
        memo[MESSAGES_MEMO] = plain_messages
    user_memo = merged.get("memo")
    if isinstance(user_memo, dict):
        memo = {**user_memo, **memo}
    kwargs.update(task_queue=str(queue), memo=memo)
    return StartRequest(revision=revision, args=args, kwargs=kwargs, workflow_id=str(workflow_id),
                        conflict=conflict, messages=plain_messages,
                        size=payload_size([args, plain_messages, full_context]))


def _refused_input(run: WorkflowRun, request: StartRequest) -> Reply | None:
    """``nil, err`` (INVALID_INPUT) when the child's ``input_schema`` refuses the input: nothing starts."""
    failure = contract_failure(request.revision, "input_schema", request.args[0] if request.args else None)
    return None if failure is None else (None, run.sandbox.error_object(failure))


async def _spawn(run: WorkflowRun, state: ProcessState, request: StartRequest, *, wait: bool) -> Reply:
    sandbox = run.sandbox
    try:
        try:
            handle = await workflow.start_child_workflow(
                request.revision.workflow_type, args=request.args, id=request.workflow_id, **request.kwargs)
        except WorkflowAlreadyStartedError:
            if request.conflict != "terminate_existing":
                return await _existing(run, request, wait=wait)
            if request.workflow_id not in state.children:
                # the authority rule of terminate: a run replaces only a workflow it spawned itself
                refused = FlowFailure("NOT_FOUND", f"id_conflict_policy terminate_existing: {request.workflow_id} is "
                                      "running and is not a child of this workflow (a workflow can terminate only "
                                      "the workflows it spawned)", retryable=False,
                                      details={"workflow_id": request.workflow_id})
                return (None, sandbox.error_object(refused))
            # Child starts have no conflict policy in Temporal: terminate the running one, then start again.
            terminated = await _terminate(run, request.workflow_id, "replaced (id_conflict_policy terminate_existing)")
            if terminated[0] is None:
                return terminated
            handle = await workflow.start_child_workflow(
                request.revision.workflow_type, args=request.args, id=request.workflow_id, **request.kwargs)
    except WorkflowAlreadyStartedError:
        return await _existing(run, request, wait=wait)
    except asyncio.CancelledError:
        return (None, sandbox.error_object(canceled_failure("the start was canceled")))
    child = state.children[request.workflow_id] = Child(request.workflow_id)
    if wait:
        value, failure = await _outcome(handle)
        child.monitored = False
        state.child_exited(child, value, failure)
        if failure is not None:
            return (None, sandbox.error_object(failure))
        return (sandbox.import_(value, f"{request.revision.entry_id} result"),)

    async def watch() -> None:
        state.child_exited(child, *await _outcome(handle))

    run.driver.start_background(watch())
    return (request.workflow_id, handle.first_execution_run_id)


async def _outcome(handle: Any) -> tuple[Any, FlowFailure | None]:
    try:
        return await handle, None
    except ChildWorkflowError as exc:
        return None, failure_from_temporal(exc)
    except asyncio.CancelledError:
        return None, canceled_failure("the child workflow was canceled")


async def _existing(run: WorkflowRun, request: StartRequest, *, wait: bool) -> Reply:
    """The id is taken by a running workflow: reuse it (use_existing), or report the conflict."""
    sandbox = run.sandbox
    if request.conflict != "use_existing" or wait:
        failure = FlowFailure("ALREADY_STARTED", f"a workflow with id {request.workflow_id!r} is already running",
                              retryable=False, details={"workflow_id": request.workflow_id})
        return (None, sandbox.error_object(failure))
    me = workflow.info().workflow_id
    for message in request.messages:  # with use_existing the start messages still reach it
        await workflow.get_external_workflow_handle(request.workflow_id).signal(
            message["topic"], args=[message["payload"], {"from": me}])
    return (request.workflow_id, None)


def _target(cmd: Any, what: str) -> str:
    """The workflow id a pid command names (process.lua sends a non-empty string)."""
    target: str = text(cmd, "id", f"{what}: the pid", empty=False)
    return target


def _child(state: ProcessState, cmd: Any, what: str) -> Child | tuple[Any, ...]:
    """The child a pid command names, or the ``(nil, NOT_FOUND error)`` reply saying the rule."""
    target = _target(cmd, what)
    child = state.children.get(target)
    if child is None:
        failure = FlowFailure("NOT_FOUND", f"{what}: {target} is not a child of this workflow (a workflow can "
                              "monitor, link, cancel and terminate only the workflows it spawned)",
                              retryable=False, details={"workflow_id": target})
        return (None, state.run.sandbox.error_object(failure))
    return child


def _first_arg(run: WorkflowRun, cmd: Any, what: str) -> Any:
    """The first extra argument of a pid command (``process.terminate(pid, reason)``), as plain data."""
    return lua_value(run.sandbox, lua_field(lua_field(cmd, "args", what), 1, what), what)


async def _signal(run: WorkflowRun, target: str, topic: str, payload: Any, me: str) -> Reply:
    try:
        await workflow.get_external_workflow_handle(target).signal(topic, args=[payload, {"from": me}])
    except asyncio.CancelledError:
        return (None, run.sandbox.error_object(canceled_failure()))
    except Exception as exc:  # the target does not exist or already closed
        failure = FlowFailure("NOT_FOUND", f"process.send to {target}: {exc}", retryable=False)
        return (None, run.sandbox.error_object(failure))
    return (True, None)


async def _terminate(run: WorkflowRun, target: str, reason: str) -> Reply:
    try:
        await workflow.execute_activity(TERMINATE_ACTIVITY, args=[{"workflow_id": target, "reason": reason}],
                                        **internal_activity_options())
    except ActivityError as exc:
        return (None, run.sandbox.error_object(failure_from_temporal(exc)))
    return (True, None)


async def _cancel(run: WorkflowRun, state: ProcessState, target: str, deadline: Any) -> Reply:
    try:  # a bad deadline is the caller's error, found before anything is canceled
        grace = parse_duration(deadline, what="process.cancel deadline") if deadline is not None else None
    except FlowError as exc:
        raise ShimError(exc.message) from None
    try:
        await workflow.get_external_workflow_handle(target).cancel()
    except Exception as exc:
        failure = FlowFailure("NOT_FOUND", f"process.cancel of {target}: {exc}", retryable=False)
        return (None, run.sandbox.error_object(failure))
    child = state.children.get(target)
    if grace is not None and child is not None:
        async def enforce() -> None:
            await workflow.sleep(grace)
            if child.exit is None:  # still running after the deadline: stop it for good
                await _terminate(run, target, f"not canceled within {deadline}")

        run.driver.start_background(enforce())
    return (True, None)


def internal_activity_options() -> dict[str, Any]:
    """How flowctl's own activities run: on this workflow's task queue, a few quick retries."""
    return {"task_queue": workflow.info().task_queue, "start_to_close_timeout": timedelta(seconds=30),
            "retry_policy": RetryPolicy(maximum_attempts=5)}

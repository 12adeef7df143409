"""The Lua sandbox: one factory for the locked-down Lua 5.4 runtime every run and activity call gets.

A :class:`LuaSandbox` is a fresh lupa ``LuaRuntime`` (so a run's globals, string hash seed
and heap are its own) prepared by the prelude, the files of ``runner/sandbox/lua/`` run in
name order, which keep the dangerous parts of Lua in upvalues and build the environment
user code runs in: the allow-list (``75_allow_list.lua``, docs/sandbox.md), deterministic
``pairs``/``next``/``table.sort``/``tostring``, ``math.random`` seeded from the run,
``os.time/clock/date`` on the driver's clock, ``load`` for text only, ``require`` for listed
modules and imports only. No Python object is ever reachable from user code: Lua code talks
to Python only by yielding command tables (runner.sandbox.driver), and the runtime refuses
attribute access on any Python object that would leak in anyway. (The prelude itself holds
one Python function in a local, ``_part``, and calls it the first time a run needs one of the
parts of flowctl's Lua built on demand, for that part's bytecode: lua/45_on_demand.lua.)

Limits: memory per runtime (lupa's allocator cap) and an instruction budget per
:meth:`begin_task` (a count hook on every coroutine, plus what C library functions charge for
the work they do; docs/sandbox.md, Limits). Hitting one raises
:class:`~runner.sandbox.failures.LimitExceeded` naming the limit and the Lua file:line; user code
can neither catch it nor forge one.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

import lupa.lua54 as lua54

from registry.sandbox_limits import format_size
from runner.sandbox.failures import FlowFailure, LimitExceeded, LuaRuntimeError
from runner.sandbox.values import first_problem, flattened, rebuilt

__all__ = [
    "ACTIVITY_LIMITS",
    "DEFAULT_ACTIVITY_INSTRUCTIONS",
    "DEFAULT_MEMORY_LIMIT",
    "DEFAULT_WORKFLOW_INSTRUCTIONS",
    "WORKFLOW_LIMITS",
    "LuaSandbox",
    "SandboxLimits",
    "lua_file",
]

#: 64 MiB of Lua heap per interpreter (one per run, one per activity call).
DEFAULT_MEMORY_LIMIT = 64 << 20
#: Per workflow task: a fraction of a second of pure Lua, far more than orchestration needs.
DEFAULT_WORKFLOW_INSTRUCTIONS = 50_000_000
#: Per activity call: several seconds of pure Lua.
DEFAULT_ACTIVITY_INSTRUCTIONS = 1_000_000_000


@dataclass(frozen=True)
class SandboxLimits:
    """What one runtime may use: Lua heap bytes, VM instructions per workflow task / activity call,
    and the quotas of a run (runner.sandbox.quotas; docs/sandbox.md, Quotas: why each default)."""

    memory: int = DEFAULT_MEMORY_LIMIT
    instructions: int = DEFAULT_WORKFLOW_INSTRUCTIONS
    #: channels alive at once (channel.new, time.after, process.listen/inbox/events)
    channels: int = 10_000
    #: process.listen topics
    listeners: int = 1_000
    #: values waiting in the mailbox and in channel buffers, and the bytes Python holds for them
    queued_messages: int = 10_000
    queued_bytes: int = 16 << 20
    #: coroutine.spawn threads alive at once
    coroutines: int = 10_000
    #: commands (timers, activities, children, signals, cancels) per workflow task, and their payload bytes
    commands_per_task: int = 2_000
    task_payload_bytes: int = 3 << 20
    #: bytes of one payload (a result, an activity's or child's arguments, a message, a query answer...)
    payload_bytes: int = 1 << 20
    #: bytes of an error message or traceback sent to Temporal (longer ones are truncated)
    error_bytes: int = 64 << 10
    #: how far an entry's ``limits: {memory, instructions_per_task}`` may go (None: ``memory``/``instructions``;
    #: ``flowctl worker --max-memory --max-instructions``; runner.sandbox.quotas.entry_limits)
    max_memory: int | None = None
    max_instructions: int | None = None

    def __post_init__(self) -> None:
        if any(value is not None and value <= 0 for value in vars(self).values()):
            raise ValueError(f"sandbox limits must be positive, got {self}")


#: Limits of a workflow run, and of one Lua activity call.
WORKFLOW_LIMITS = SandboxLimits()
ACTIVITY_LIMITS = SandboxLimits(instructions=DEFAULT_ACTIVITY_INSTRUCTIONS)
#: Room given back to a runtime that hit its memory limit, so the failure can be described.
_MEMORY_HEADROOM = 4 << 20
#: Room kept free when Python puts values into Lua (lupa's pushes are unprotected: LuaSandbox._room_for).
_PUSH_MARGIN = 64 << 10

_LuaError = lua54.LuaError
_LuaMemoryError = getattr(lua54, "LuaMemoryError", lua54.LuaError)
_LuaSyntaxError = lua54.LuaSyntaxError


@functools.cache
def lua_file(package: str, name: str) -> str:
    """The text of a Lua file flowctl ships in ``package`` (the prelude's chunks, the shims' Lua halves)."""
    return resources.files(package).joinpath(name).read_text(encoding="utf-8")


# flowctl's own Lua (the prelude, the shims) is compiled once per process and every runtime
# loads the bytecode: 4-5x faster than compiling the text again for every run and activity
# call. The bytecode is stripped of debug info (about 30% less Lua heap per runtime); user
# code never runs without it. Only this trusted path loads binary chunks: user code's `load`
# is text-only (lua/70_modules.lua) and `string.dump` is not in the sandbox.
@functools.cache
def _prelude() -> bytes:
    """The prelude's files compiled as one chunk: run with the config table, it returns the control table.

    ``lua/00_shared.lua`` first, then every other file, in name order, as a ``do ... end``
    block of its own: a file's locals stay its own, and what files share is declared in
    00_shared.lua (it says how); 90_control.lua sets ``control``.
    """
    folder = resources.files("runner.sandbox").joinpath("lua")
    first, *rest = sorted(item.name for item in folder.iterdir() if item.name.endswith(".lua"))
    blocks = []
    for name in rest:
        now, later = _split(lua_file("runner.sandbox", "lua/" + name))
        if later is not None:  # the file's on-demand part: build_part("25_metatables", ...)
            _PARTS[name.removesuffix(".lua")] = _bytecode(later, f"=lua/{name} (on demand)")
        blocks.append(f"do\n{now}\nend")
    source = "\n".join([lua_file("runner.sandbox", "lua/" + first), *blocks, "return control"])
    return _bytecode(source, "=prelude")


@functools.cache
def _on_demand() -> bytes:
    """``lua/on_demand/`` compiled like the prelude: what a runtime loads when it first needs it.

    Run with what the prelude shares, the chunk returns the counted pattern matcher's
    string functions and the table functions' slow paths (lua/45_on_demand.lua).
    """
    folder = resources.files("runner.sandbox").joinpath("lua", "on_demand")
    first, *rest = sorted(item.name for item in folder.iterdir() if item.name.endswith(".lua"))
    blocks = [f"do\n{lua_file('runner.sandbox', 'lua/on_demand/' + name)}\nend" for name in rest]
    source = "\n".join([lua_file("runner.sandbox", "lua/on_demand/" + first), *blocks,
                        "return {find = pattern_find, match = pattern_match, gmatch = pattern_gmatch, "
                        "gsub = pattern_gsub, insert = table_insert, remove = table_remove, "
                        "concat = table_concat, move_long = table_move_long, read_chunk = read_chunk}"])
    return _bytecode(source, "=on_demand")


# Parts of flowctl's Lua a runtime builds only when a run first needs them (docs/performance.md,
# What is built on demand): a run that never needs one never carries it in its heap. A file of
# the prelude or a shim may end with such a part: the text below its ON_DEMAND_LINE, compiled
# as a chunk of its own. The runtimes of a process share the bytecode only (immutable bytes);
# each one builds, from it, functions and tables of its own.
ON_DEMAND_LINE = "--- on demand ---"
#: part name -> stripped bytecode; filled when the prelude and the shims are compiled, never changed
_PARTS: dict[str, bytes] = {}


def _split(text: str) -> tuple[str, str | None]:
    """A file's text before its ON_DEMAND_LINE and after it (None: the file has no on-demand part)."""
    now, mark, later = text.partition(f"\n{ON_DEMAND_LINE}\n")
    return (now, later) if mark else (text, None)


def _part(name: str) -> bytes:
    """The bytecode of the on-demand part ``name`` (the prelude asks for it when a run first needs it)."""
    return _on_demand() if name == "on_demand" else _PARTS[name]


@functools.lru_cache(maxsize=256)
def _chunk(source: str, chunkname: str) -> tuple[bytes, str | None]:
    """One of flowctl's own chunks compiled: its bytecode, and the name of its on-demand part (or None)."""
    now, later = _split(source)
    if later is None:
        return _bytecode(source, chunkname), None
    # named by its text too: two texts loaded under one chunk name never share a part
    part = f"{chunkname.lstrip('=@')}:{hashlib.sha256(later.encode()).hexdigest()[:12]}"
    _PARTS[part] = _bytecode(later, f"{chunkname} (on demand)")
    return _bytecode(now, chunkname), part


@functools.lru_cache(maxsize=256)
def _bytecode(source: str, chunkname: str) -> bytes:
    """``source`` compiled to stripped Lua 5.4 bytecode (in a throwaway runtime)."""
    compiler = lua54.LuaRuntime(encoding=None, register_eval=False, register_builtins=False)
    code, err = compiler.execute("local fn, err = load(...); if fn == nil then return nil, err end "
                                 "return string.dump(fn, true), nil", source.encode(), chunkname.encode(), b"t")
    if code is None:
        raise LuaRuntimeError(err.decode("utf-8", "replace") if isinstance(err, bytes) else str(err))
    return bytes(code)


def _deny_attributes(obj: Any, name: Any, is_setting: bool) -> Any:
    # Lua never gets Python objects; if one ever leaks, it stays inert.
    raise AttributeError("Python objects are not accessible from the Lua sandbox")


class LuaSandbox:
    """One locked-down Lua runtime (a workflow run's, or one activity call's)."""

    def __init__(self, *, seed: int | None = None, limits: SandboxLimits = WORKFLOW_LIMITS,
                 clock_ns: Callable[[], int] | None = None, spawn: bool = False,
                 owner: str = "this entry") -> None:
        self.limits = limits
        self._clock_ns = clock_ns
        self.lua = lua54.LuaRuntime(unpack_returned_tuples=False, register_eval=False,
                                    register_builtins=False, attribute_filter=_deny_attributes,
                                    max_memory=limits.memory)
        config = self.lua.table_from({
            "seed": seed if seed is not None else int.from_bytes(os.urandom(7), "big"),
            "spawn": spawn,
            # the prelude keeps it where user code cannot reach it and calls it when the run
            # first needs a part built on demand (lua/45_on_demand.lua): it returns bytecode
            "on_demand": _part,
        })
        self._control = control = self.lua.execute(_prelude(), config)
        self.env = control.env
        self.yield_command = control.yield_command
        #: what flowctl's shim chunks receive (lua/80_shim_kit.lua); never given to user code
        self.kit = control.kit
        self._run_chunk = control.run_chunk
        self._step = control.step
        self._begin_task = control.begin_task
        self._set_now = control.set_now
        self._export = control.export
        self._take_values = control.take_values
        self._import = control["import"]
        self._add_module = control.add_module
        self._lua_type = control.type
        self.configure(owner)

    # ------------------------------------------------------------------ building

    def configure(self, owner: str, module_names: str = "") -> None:
        """Name the entry (for require errors) and the modules it may list."""
        self._control.configure(owner, module_names or "none listed")

    def add_module(self, name: str, value: Any = None, *, as_global: bool = True) -> None:
        """``require(name)`` returns ``value`` (None: built-in json/errors); a global too (docs/lua-api.md)."""
        self._add_module(name, value, as_global)

    def add_library(self, alias: str, source: str, chunkname: str) -> None:
        """A library.lua source that ``require(alias)`` loads (once, lazily) in this sandbox."""
        self._control.add_library(alias, source, chunkname)

    def compile(self, source: str, chunkname: str) -> Any:
        """Compile user code (``chunkname`` like ``order_workflow.lua``) in the sandbox environment."""
        fn, err = self._control.compile(source, "@" + chunkname)
        if fn is None:
            raise LuaRuntimeError(str(err), where=_where_of(str(err)))
        return fn

    def entrypoint(self, source: str, chunkname: str, method: str) -> Any:
        """A Lua function that runs the chunk, then calls its exported ``method`` with its arguments."""
        return self._control.entrypoint(self.compile(source, chunkname), method, chunkname)

    def load(self, source: str, chunkname: str, *args: Any) -> Any:
        """Run one of flowctl's own chunks (shims) in the sandbox environment with ``args``; its results.

        Compiled once per process (cached bytecode, see ``_bytecode``), never per runtime. A
        chunk with an on-demand part (the text below its ``--- on demand ---`` line) receives,
        before ``args``, the function that builds that part, once, from the arguments it is given.
        """
        code, part = _chunk(source, chunkname if chunkname.startswith("=") else "@" + chunkname)
        return self._run_chunk(code, part, *args)

    # ------------------------------------------------------------------ running

    def begin_task(self) -> None:
        """A fresh instruction budget: once per workflow task, once per activity attempt."""
        self._begin_task(self.limits.instructions)

    def instructions_used(self) -> int:
        """What the current task has been charged so far (whole TICKs of 1,000 plus C work charged)."""
        used, budget = self._begin_task(0)
        self._begin_task(budget, used)
        return int(used)

    @contextlib.contextmanager
    def own_budget(self, *, count_for_task: bool = False) -> Iterator[None]:
        """Run Lua on a fresh budget of its own, then give the task its budget back.

        A query or an update validator runs between workflow tasks: it must neither reset nor
        use up the task's budget. With ``count_for_task`` what it used counts for the task too
        (an export of the task's values): it may overrun the task's budget, which then stops
        the task at its next instruction.
        """
        used, budget = self._begin_task(self.limits.instructions)
        try:
            yield
        finally:
            spent, _ = self._begin_task(budget, used)
            if count_for_task:
                self._begin_task(budget, used + spent)

    def start(self, fn: Any) -> Any:
        """A new Lua thread (coroutine, with the instruction hook) that will run ``fn``.

        Raises LimitExceeded when the heap has no room left for one.
        """
        try:
            return self._control.start(fn)
        except _LuaMemoryError:
            raise self._memory_exceeded() from None

    def resume(self, thread: Any, *values: Any) -> tuple[bool, tuple[Any, ...]]:
        """Resume ``thread``: ``(True, results)`` once it returns, ``(False, (command,))`` if it yields one.

        Raises LimitExceeded for a sandbox limit and LuaRuntimeError for an uncaught Lua error.
        """
        if self._clock_ns is not None:
            self._set_now(self._clock_ns())
        try:
            reply = self._step(thread, *values)
        except _LuaMemoryError:
            raise self._memory_exceeded(thread) from None
        except _LuaError as exc:  # the prelude failed: only memory exhaustion gets here in practice
            if "not enough memory" in str(exc):
                raise self._memory_exceeded(thread) from None
            raise LuaRuntimeError(f"the Lua sandbox failed: {exc}") from None
        status = reply[0]
        if status == "command":
            return False, (reply[1],)
        if status == "done":
            count = reply[1]
            results = tuple(reply[2:2 + count])
            return True, results + (None,) * (count - len(results))
        if status == "limit":
            raise LimitExceeded(str(reply[1]), str(reply[2]), detail=_limit_detail(self.limits, str(reply[1])))
        if status == "yield":
            raise LuaRuntimeError("coroutine.yield() was called outside a coroutine; yield only inside "
                                  "functions run with coroutine.create/wrap")
        value, trace, where = reply[1], str(reply[2]), str(reply[3])
        message = trace.split("\n", 1)[0]
        return_error = LuaRuntimeError(message, traceback=trace, value=value, where=where)
        raise return_error

    def park(self) -> None:
        """The run is about to wait (between workflow tasks): let the collector free the task's garbage."""
        self._control.park(False)

    def _room_for(self, cost: int) -> None:
        """LimitExceeded (memory) unless ``cost`` more bytes fit in the heap, after a full collection if need be.

        lupa puts Python values into Lua unprotected: a heap running out there would abort the whole
        process (a Lua panic), where an allocation inside Lua code fails as a catchable memory error.
        """
        for full in (False, True):
            if self.memory_used() + cost + _PUSH_MARGIN <= self.limits.memory:
                return
            if not full:
                self._control.park(True)
        raise self._memory_exceeded()

    def where(self, thread: Any) -> str:
        """The user's Lua ``file:line`` where driver thread ``thread`` waits for a command's answer (``?``)."""
        return str(self._control.limit_where(thread))

    def _memory_exceeded(self, thread: Any = None) -> LimitExceeded:
        self.lua.set_max_memory(self.limits.memory + _MEMORY_HEADROOM)
        try:
            where = str(self._control.limit_where(thread))
        except _LuaError:
            where = "?"
        return LimitExceeded("memory", where, detail=format_size(self.limits.memory))

    # ------------------------------------------------------------------ values

    def lua_type(self, value: Any) -> str:
        """Lua's type() of a value held by Python."""
        return str(self._lua_type(value))

    def defined_line(self, fn: Any) -> int:
        """The line a Lua function is defined at (``debug.getinfo(fn, "S").linedefined``; 0 for C functions)."""
        return int(self.lua.globals().debug.getinfo(fn, "S").linedefined)

    def export(self, value: Any, path: str = "value") -> Any:
        """A Lua value as plain Python data (docs/sandbox.md, Values); FlowFailure(INVALID) naming the path if not."""
        if value is None or isinstance(value, bool | int | float):
            if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
                raise FlowFailure("INVALID", f"{path}: number {value} cannot be sent "
                                  "(JSON has no NaN or infinity)", retryable=False)
            return value
        if isinstance(value, str):
            return value
        try:
            # in a Lua thread of its own, with the instruction hook: the encoder's work (sorting
            # the keys of a big table...) is charged like any Lua code
            with self.own_budget(count_for_task=True):
                finished, results = self.resume(self.start(self._export), value, path)
            ops, values, count = (*results, None, None, 0)[:3] if finished else (None, f"{path}: cannot be sent", 0)
            if ops is not None:
                # Lua flattened it (50_json_encode.lua, flatten): no JSON text to write and parse
                return rebuilt(ops, self._values_of(values, count))
            err = values
        except LimitExceeded as exc:
            if exc.where != "?":
                raise
            detail = _limit_detail(self.limits, exc.limit)
            raise LimitExceeded(exc.limit, f"the export of {path}", detail=detail) from None
        except UnicodeDecodeError:
            err = f"{path}: a string is not valid UTF-8"
        except _LuaMemoryError:
            raise self._memory_exceeded() from None
        raise FlowFailure("INVALID", str(err), retryable=False)

    def _values_of(self, values: Any, count: int) -> Iterator[Any]:
        """The items 1..count of the values table ``flatten`` made, taken a chunk at a time (table.unpack)."""
        for first in range(1, count + 1, _CHUNK):
            yield from self._take_values(values, first, min(first + _CHUNK - 1, count))[1:]

    def import_(self, value: Any, path: str = "value") -> Any:
        """Plain Python data as a Lua value (tables marked as json arrays/objects)."""
        if value is None or isinstance(value, bool | int | float | str):
            # scalars go to Lua as they are: only check what Lua cannot hold
            problem = first_problem(value, path)
            if problem is not None:
                raise FlowFailure("INVALID", problem, retryable=False)
            return value
        try:
            # Python checks and flattens the data, Lua only builds tables (no JSON text to parse)
            ops, values = flattened(value)
            self._room_for(_push_cost(ops, values))
            return self._import(ops, self.lua.table_from(values))
        except _LuaMemoryError:
            raise self._memory_exceeded() from None
        except (TypeError, ValueError, RecursionError) as exc:  # (UnicodeEncodeError is a ValueError)
            err = f"{path}: cannot be given to Lua: {exc}"
        # say where: first_problem walks the data again
        raise FlowFailure("INVALID", first_problem(value, path) or err, retryable=False)

    def new_error(self, kind: str, message: str, *, retryable: bool = True, details: Any = None,
                  where: str | None = None) -> Any:
        """A Lua error object (``err:kind()``, ``err:message()``, ...)."""
        lua_details = self.import_(details, "details") if details is not None else None
        try:
            return self._control.new_error(kind, message, retryable, lua_details, where)
        except _LuaMemoryError:
            raise self._memory_exceeded() from None

    def error_fields(self, value: Any) -> tuple[str, str, bool, Any, str | None] | None:
        """``(kind, message, retryable, details, where)`` of a Lua error object, or None if it is not one."""
        if self.lua_type(value) != "table":
            return None
        fields = self._control.error_fields(value)
        if not isinstance(fields, tuple) or fields[0] is None:
            return None
        kind, message, retryable, boxed, where = (tuple(fields) + (None,) * 5)[:5]
        try:  # ``boxed``: {details}, a plain table error_fields built; exported whole so no string is decoded here
            exported = self.export(boxed, "details") if boxed is not None else None
        except FlowFailure:
            exported = None
        plain = exported[0] if isinstance(exported, list) and exported else None
        return str(kind), str(message), bool(retryable), plain, (str(where) if where else None)

    def failure_of(self, value: Any) -> FlowFailure:
        """The FlowFailure for a Lua error value: an ``errors.new`` object, a string, or anything else."""
        if isinstance(value, str):
            return FlowFailure("INTERNAL", value, retryable=True)
        fields = self.error_fields(value)
        if fields is not None:
            kind, message, retryable, details, where = fields
            return FlowFailure(kind, message, retryable=retryable, details=details, where=where)
        if value is None or isinstance(value, bool | int | float):
            return FlowFailure("INTERNAL", f"error value {value!r}", retryable=True)
        try:
            shown = self.export(value, "error")
        except FlowFailure:
            shown = f"a {self.lua_type(value)} value"
        return FlowFailure("INTERNAL", f"error value {shown}", retryable=True, details=None)

    def error_object(self, failure: FlowFailure) -> Any:
        """A Lua error object (``err:kind()``, ``err:message()``...) carrying ``failure``."""
        return self.new_error(failure.kind, failure.message, retryable=failure.retryable,
                              details=failure.details, where=failure.where)

    def memory_used(self) -> int:
        """Bytes the Lua heap holds now."""
        return int(self.lua.get_memory_used())


#: how many flattened values one call hands Python (each is a slot on the Lua stack meanwhile)
_CHUNK = 4096


def _limit_detail(limits: SandboxLimits, limit: str) -> str:
    """What the limit was: ``64 MiB``, ``50,000,000 instructions per task``, or nothing (stack)."""
    if limit == "memory":
        return format_size(limits.memory)
    return f"{limits.instructions:,} instructions per task" if limit == "instructions" else ""


def _push_cost(ops: str, values: list[Any]) -> int:
    """At most the Lua heap bytes that pushing ``ops`` and a table of ``values`` takes (each value's slot,
    a string's header and UTF-8 bytes)."""
    text = sum(len(v) if v.isascii() else len(v.encode("utf-8", "surrogatepass")) for v in values
               if isinstance(v, str))
    return len(ops) + 64 * (len(values) + 1) + text


def _where_of(message: str) -> str | None:
    """``file.lua:12`` from a Lua message like ``file.lua:12: unexpected symbol``."""
    head, sep, _ = message.partition(": ")
    return head if sep and ":" in head else None

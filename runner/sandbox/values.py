"""Values across the Lua boundary (docs/sandbox.md, Values): lossless Lua <-> JSON-shaped Python data.

Integers stay integers and floats stay floats; strings must be UTF-8; a table with keys
1..n is a list, one with string keys an object; ``json.array()`` / ``json.object()`` mark
empty tables (an unmarked empty table is a list); ``json.null`` is JSON null inside lists
and objects. Cycles, NaN, functions and non-UTF-8 strings are errors naming the path
(``input.items[3].price``). The conversion itself runs in the sandbox's trusted Lua code,
one call per value, never running user metamethods (``LuaSandbox.import_`` / ``export``).

Shim handlers read command fields with :func:`lua_value` / :func:`lua_args` /
:func:`lua_options`, which turn a value that cannot cross into a Lua error at the caller, and
one larger than a Temporal payload may be into the ``payload_bytes`` quota's LIMIT_EXCEEDED
(runner.sandbox.quotas).

This is also the one audited module where Python touches a Lua object it did not create
(tests/runner/test_lupa_boundary.py keeps it so). lupa runs Lua code for Python's ``str()``
(the value's ``__tostring``), formatting and indexing (``__index``), on the interpreter's
main thread, outside any instruction budget and with the GIL held: a looping metamethod
there would freeze the whole worker, and ``repr()`` shows a heap address. So a command is
read field by field here (:func:`text`, :func:`integer`, :func:`flag`, :func:`lua_function`,
:func:`lua_field`), from tables flowctl's own shim code built (no metatable: indexing them runs no
user code), and every field is checked to be a plain value of the expected type; anything
else is a ShimError that says what arrived (its Lua type, never its text or address). Lua
values Python only hands back (a function to run, a payload to export) stay opaque.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any, Protocol

import lupa.lua54 as lupa

from runner.sandbox.failures import FlowFailure, ShimError
from runner.sandbox.quotas import check_payload

__all__ = ["MAX_IMPORT_DEPTH", "LuaExporter", "command_op", "describe", "first_problem", "flag", "flattened",
           "integer", "is_lua_object", "lua_args", "lua_args_sized", "lua_field", "lua_function", "lua_options",
           "lua_payload", "lua_record", "lua_type_of", "lua_value", "rebuilt", "text"]

#: How deep Python data may nest on its way into Lua (:func:`flattened` checks it, as the JSON decoder does).
MAX_IMPORT_DEPTH = 200


class LuaExporter(Protocol):
    """What reading a command field needs of a sandbox (:class:`~runner.sandbox.runtime.LuaSandbox`)."""

    #: its SandboxLimits (``payload_bytes``)
    limits: Any

    def export(self, value: Any, path: str = "value") -> Any: ...



def first_problem(value: Any, path: str = "value") -> str | None:
    """Why ``value`` cannot become a Lua value, naming the path (``input.items[3].price``); None if it can.

    Only called once a conversion failed: it walks the data to say where.
    """
    return _problem(value, path, 0, set())


def _problem(value: Any, path: str, depth: int, active: set[int]) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return None if -(1 << 63) <= value < (1 << 63) else f"{path}: integer {value} does not fit in 64 bits"
    if isinstance(value, float):
        return None if math.isfinite(value) else \
            f"{path}: number {value} cannot be given to Lua (JSON has no NaN or infinity)"
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"{path}: string is not valid UTF-8 (it holds a lone surrogate)"
        return None
    if not isinstance(value, list | tuple | dict):
        return (f"{path}: a Python {type(value).__name__} cannot be given to Lua (only None, booleans, "
                "numbers, strings, lists and dicts can)")
    if depth >= MAX_IMPORT_DEPTH:
        return f"{path}: nested more than {MAX_IMPORT_DEPTH} levels deep"
    if id(value) in active:
        return f"{path}: refers to itself (a cycle); it cannot be given to Lua"
    active.add(id(value))
    items = value.items() if isinstance(value, dict) else enumerate(value, 1)
    for key, item in items:
        if isinstance(value, dict):
            key = str(key)
            sub = f"{path}.{key}" if key.isidentifier() and key.isascii() else f"{path}[{json.dumps(key)}]"
        else:
            sub = f"{path}[{key}]"
        problem = _problem(item, sub, depth + 1, active)
        if problem is not None:
            return problem
    active.discard(id(value))
    return None


def flattened(value: Any) -> tuple[str, list[Any]]:
    """Plain Python data as what the sandbox's ``import`` builds Lua tables from (lua/55_json_decode.lua).

    ``ops`` has one character per step: ``{`` / ``[`` opens an object / a list, ``}`` closes it,
    ``k`` takes the next of ``values`` as the key of the next item, ``v`` the next of ``values``
    as a value, ``n`` is null. ``values`` holds only strings, integers, floats and booleans,
    each one checked here as JSON would be (keys as ``json.dumps`` writes them), so Lua has no
    text to parse. Raises ValueError / TypeError when ``value`` cannot cross
    (:func:`first_problem` then says where).
    """
    ops: list[str] = []
    values: list[Any] = []
    add_op, add_value = ops.append, values.append

    def walk(v: Any, depth: int) -> None:
        if v is None:
            add_op("n")
        elif isinstance(v, str):
            add_op("v")
            add_value(str(v))
        elif isinstance(v, bool):
            add_op("v")
            add_value(bool(v))
        elif isinstance(v, int):
            if not -(1 << 63) <= v < (1 << 63):
                raise ValueError("an integer does not fit in 64 bits")
            add_op("v")
            add_value(int(v))
        elif isinstance(v, float):
            if not math.isfinite(v):
                raise ValueError("JSON has no NaN or infinity")
            add_op("v")
            add_value(float(v))
        elif isinstance(v, dict | list | tuple):
            if depth >= MAX_IMPORT_DEPTH:
                raise ValueError(f"nested more than {MAX_IMPORT_DEPTH} levels deep")
            if isinstance(v, dict):
                add_op("{")
                for key, item in v.items():
                    add_op("k")
                    add_value(_json_key(key))
                    walk(item, depth + 1)
            else:
                add_op("[")
                for item in v:
                    walk(item, depth + 1)
            add_op("}")
        else:
            raise TypeError(f"Object of type {type(v).__name__} is not JSON serializable")

    walk(value, 0)
    return "".join(ops), values


def rebuilt(ops: str, values: Iterable[Any]) -> Any:
    """The Python data the sandbox's ``export`` flattened (lua/50_json_encode.lua, flatten).

    ``ops`` and ``values`` are as in :func:`flattened`, the other way: Lua checked every value
    (UTF-8 strings, finite numbers, string keys, depth, cycles), so this only builds.
    """
    take = iter(values).__next__
    parents: list[tuple[Any, Any]] = []
    current: Any = None
    key: Any = None
    result: Any = None
    for op in ops:
        if op == "v":
            value = take()
        elif op == "k":
            key = take()
            continue
        elif op == "n":
            value = None
        elif op == "}":
            value = current
            current, key = parents.pop()
        else:
            parents.append((current, key))
            current = {} if op == "{" else []
            continue
        if current is None:
            result = value
        elif type(current) is list:
            current.append(value)
        else:
            current[key] = value
    return result


def _json_key(key: Any) -> str:
    """A dict key as ``json.dumps`` writes it (``1`` -> ``"1"``, ``True`` -> ``"true"``)."""
    if isinstance(key, str):
        return str(key)
    if key is None or isinstance(key, bool | int | float):
        return json.dumps(key, allow_nan=False)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def lua_value(sandbox: LuaExporter, value: Any, what: str) -> Any:
    """``from_lua`` whose failures (cycles, functions, NaN, bad UTF-8…) raise ShimError naming ``what``.

    A value larger than one payload may be is the ``payload_bytes`` quota's QuotaExceeded.
    """
    return lua_payload(sandbox, value, what)[0]


def lua_payload(sandbox: LuaExporter, value: Any, what: str) -> tuple[Any, int]:
    """:func:`lua_value`, and its size in bytes as a Temporal payload."""
    plain = _exported(sandbox, value, what)
    return plain, check_payload(plain, sandbox.limits, what)


def _exported(sandbox: LuaExporter, value: Any, what: str) -> Any:
    if value is None:
        return None
    try:
        return sandbox.export(value, what)
    except FlowFailure as exc:
        raise ShimError(exc.message) from None


def lua_args(sandbox: LuaExporter, packed: Any, what: str) -> list[Any]:
    """The arguments of a ``table.pack(...)`` (nils included, up to ``n``), each exported.

    They travel as one payload: together larger than one may be is the ``payload_bytes`` quota's
    QuotaExceeded.
    """
    return lua_args_sized(sandbox, packed, what)[0]


def lua_args_sized(sandbox: LuaExporter, packed: Any, what: str) -> tuple[list[Any], int]:
    """:func:`lua_args`, and their size in bytes as one Temporal payload (measured once)."""
    if lua_type_of(packed) != "table":
        raise ShimError(f"{what}s: expected a table.pack of arguments, got {describe(packed)}")
    count = integer(packed, "n", f"{what} count")
    args = [_exported(sandbox, lua_field(packed, i, f"{what} {i}"), f"{what} {i}") for i in range(1, count + 1)]
    return args, check_payload(args, sandbox.limits, f"{what}s")


def lua_options(sandbox: LuaExporter, options: Any, what: str) -> dict[str, Any]:
    """An options table as a dict (empty when nil)."""
    value = lua_value(sandbox, options, what)
    if value is None or value == [] or value == {}:
        return {}
    if not isinstance(value, dict):
        raise ShimError(f"{what} must be a table of option = value")
    return value


# ---------------------------------------------------------------------- reading commands


def lua_type_of(value: Any) -> str:
    """Lua's name for the type of a value Python holds (``nil``, ``number``, ``table``...), running no Lua."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str | bytes):
        return "string"
    # lupa's lua_type looks at the object's kind only; None: a Python object, userdata to Lua
    return lupa.lua_type(value) or "userdata"


def is_lua_object(value: Any) -> bool:
    """True for a table, function, thread or userdata that lives in a Lua runtime."""
    return lupa.lua_type(value) is not None


def describe(value: Any) -> str:
    """What a value is, for an error message: its Lua type, never its text (``an integer``, ``a table``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    kind = lua_type_of(value)
    return "nil" if kind == "nil" else f"a {kind}"


def lua_field(table: Any, key: str | int, what: str) -> Any:
    """``table[key]`` of a table flowctl's shim code built (a command, its ``args``, a select case).

    Such a table has no metatable, so reading it runs no Lua code; a string in it that is not
    UTF-8 (Lua strings hold any bytes) is a ShimError naming ``what``.
    """
    try:
        return table[key]
    except UnicodeDecodeError:
        raise ShimError(f"{what}: string is not valid UTF-8 (binary data must be encoded, e.g. as hex, to "
                        "cross Temporal)") from None


def command_op(command: Any) -> str | None:
    """The ``op`` of a command a Lua thread yielded; None when it is not a command table."""
    if lupa.lua_type(command) != "table":
        return None
    try:
        op = command["op"]
    except UnicodeDecodeError:
        return None
    return op if isinstance(op, str) else None


def text(command: Any, key: str, what: str, *, optional: bool = False, empty: bool = True) -> Any:
    """A string field (None when ``optional`` and nil; a non-empty one unless ``empty``); else a ShimError."""
    value = lua_field(command, key, what)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ShimError(f"{what}: expected a string, got {describe(value)}")
    if not value and not empty:
        raise ShimError(f"{what}: expected a non-empty string")
    return value


def integer(command: Any, key: str | int, what: str, *, optional: bool = False) -> Any:
    """An integer field (None when ``optional`` and nil); else a ShimError."""
    value = lua_field(command, key, what)
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ShimError(f"{what}: expected an integer, got {describe(value)}")
    return value


def flag(command: Any, key: str, what: str) -> bool:
    """A boolean field, nil meaning false; else a ShimError."""
    value = lua_field(command, key, what)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ShimError(f"{what}: expected true or false, got {describe(value)}")
    return value


def lua_function(command: Any, key: str, what: str, *, optional: bool = False) -> Any:
    """A Lua function field (None when ``optional`` and nil), kept opaque to run in a Lua thread later."""
    value = lua_field(command, key, what)
    if value is None and optional:
        return None
    if lupa.lua_type(value) != "function":
        raise ShimError(f"{what}: expected a function, got {describe(value)}")
    return value


class LuaTables(Protocol):
    """What building a record needs of a sandbox: its lupa runtime."""

    lua: Any


def lua_record(sandbox: LuaTables, fields: dict[str, Any]) -> Any:
    """A Lua table of ``fields`` whose values are scalars, or values already in Lua (never a Python container).

    lupa would hand Lua a Python dict or list as userdata: a Python object Lua code could index
    and call into. Such a value is a bug here; data goes in through ``LuaSandbox.import_``.
    """
    for key, value in fields.items():
        if not isinstance(value, str | int | float | bool | type(None)) and not is_lua_object(value):
            raise TypeError(f"lua_record: field {key!r} is a Python {type(value).__name__}; import_ it first")
    return sandbox.lua.table_from(fields)

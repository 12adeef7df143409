"""Values across the Lua boundary (docs/sandbox.md, Values): lossless Lua <-> JSON-shaped Python data.

Integers stay integers and floats stay floats; strings must be UTF-8; a table with keys
1..n is a list, one with string keys an object; ``json.array()`` / ``json.object()`` mark
empty tables (an unmarked empty table is a list); ``json.null`` is JSON null inside lists
and objects. Cycles, NaN, functions and non-UTF-8 strings are errors naming the path
(``input.items[3].price``). The conversion itself runs in the sandbox's trusted Lua code,
one call per value, never running user metamethods (``LuaSandbox.import_`` / ``export``).

Shim handlers read command fields with :func:`lua_value` / :func:`lua_args` /
:func:`lua_options`, which turn a value that cannot cross into a Lua error at the caller.
"""

from __future__ import annotations

import json
import math
from typing import Any, Protocol

from runner.sandbox.driver import ShimError
from runner.sandbox.failures import FlowFailure

__all__ = ["MAX_IMPORT_DEPTH", "LuaExporter", "first_problem", "lua_args", "lua_options", "lua_value"]

#: How deep Python data may nest on its way into Lua (the trusted JSON decoder's limit).
MAX_IMPORT_DEPTH = 200


class LuaExporter(Protocol):
    """What reading a command field needs of a sandbox (:class:`~runner.sandbox.runtime.LuaSandbox`)."""

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


def lua_value(sandbox: LuaExporter, value: Any, what: str) -> Any:
    """``from_lua`` whose failures (cycles, functions, NaN, bad UTF-8…) raise ShimError naming ``what``."""
    if value is None:
        return None
    try:
        return sandbox.export(value, what)
    except FlowFailure as exc:
        raise ShimError(exc.message) from None


def lua_args(sandbox: LuaExporter, packed: Any, what: str) -> list[Any]:
    """The arguments of a ``table.pack(...)`` (nils included, up to ``n``)."""
    count = packed["n"] or 0
    return [lua_value(sandbox, packed[i], f"{what} {i}") for i in range(1, count + 1)]


def lua_options(sandbox: LuaExporter, options: Any, what: str) -> dict[str, Any]:
    """An options table as a dict (empty when nil)."""
    value = lua_value(sandbox, options, what)
    if value is None or value == [] or value == {}:
        return {}
    if not isinstance(value, dict):
        raise ShimError(f"{what} must be a table of option = value")
    return value

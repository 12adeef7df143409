"""Reading Lua values out of driver commands; conversion problems become Lua errors at the caller."""

from __future__ import annotations

from typing import Any

from runner.sandbox.driver import ShimError
from runner.sandbox.failures import FlowFailure
from runner.sandbox.values import from_lua


def lua_value(sandbox: Any, value: Any, what: str) -> Any:
    """``from_lua`` whose failures (cycles, functions, NaN, bad UTF-8…) raise ShimError naming ``what``."""
    if value is None:
        return None
    try:
        return from_lua(sandbox, value, what)
    except FlowFailure as exc:
        raise ShimError(exc.message) from None


def lua_args(sandbox: Any, packed: Any, what: str) -> list[Any]:
    """The arguments of a ``table.pack(...)`` (nils included, up to ``n``)."""
    count = packed["n"] or 0
    return [lua_value(sandbox, packed[i], f"{what} {i}") for i in range(1, count + 1)]


def lua_options(sandbox: Any, options: Any, what: str) -> dict[str, Any]:
    """An options table as a dict (empty when nil)."""
    value = lua_value(sandbox, options, what)
    if value is None or value == [] or value == {}:
        return {}
    if not isinstance(value, dict):
        raise ShimError(f"{what} must be a table of option = value")
    return value

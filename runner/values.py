"""Values across the Lua boundary (SPEC §5.6): lossless Lua <-> JSON-shaped Python data.

Integers stay integers and floats stay floats; strings must be UTF-8; a table with keys
1..n is a list, one with string keys an object; ``json.array()`` / ``json.object()`` mark
empty tables (an unmarked empty table is a list); ``json.null`` is JSON null inside lists
and objects. Cycles, NaN, functions and non-UTF-8 strings are errors naming the path
(``input.items[3].price``). The conversion itself runs in the sandbox's trusted Lua code,
one call per value, never running user metamethods.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runner.sandbox import LuaSandbox

__all__ = ["from_lua", "to_lua"]


def to_lua(sandbox: LuaSandbox, value: Any, path: str = "value") -> Any:
    """Plain Python data (what a JSON payload decodes to) as a Lua value of ``sandbox``."""
    return sandbox.import_(value, path)


def from_lua(sandbox: LuaSandbox, value: Any, path: str = "value") -> Any:
    """A Lua value of ``sandbox`` as plain Python data; FlowFailure(INVALID) naming the path if impossible."""
    return sandbox.export(value, path)

"""The ``crypto`` module's argument checks (the bytes themselves come from the workflow's random source)."""

from __future__ import annotations

import pytest

from tests.support.sandboxes import lua_error, shim_run


@pytest.mark.parametrize(("statement", "message"), [
    ("crypto.random_bytes(-1)", "wf.lua:3: crypto.random_bytes: n must be a non-negative integer"),
    ("crypto.random_bytes(1.5)", "wf.lua:3: crypto.random_bytes: n must be a non-negative integer"),
    ("crypto.random_bytes(2 * 1024 * 1024)", "wf.lua:3: crypto.random_bytes: n must be between 0 and 1048576"),
])
async def test_bad_sizes_fail_at_the_callers_line(statement: str, message: str) -> None:
    assert await lua_error(shim_run(["crypto"]), statement) == message


async def test_random_hex_checks_its_size_the_same_way() -> None:
    message = await lua_error(shim_run(["crypto"]), "crypto.random_hex('8')")
    assert message.endswith("crypto.random_bytes: n must be a non-negative integer")

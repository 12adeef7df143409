"""Fixtures of the sandbox tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from runner.sandbox import runtime


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The parts built by the runtimes made from now on, in order (a part's hash left off)."""
    names: list[str] = []
    part: Callable[[str], bytes] = runtime._part

    def spy(name: str) -> bytes:
        names.append(name.split(":")[0])
        return part(name)

    monkeypatch.setattr(runtime, "_part", spy)
    return names

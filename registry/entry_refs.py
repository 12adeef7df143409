"""Entry references: how one entry names another (the one rule, used by registry and runner alike)."""

from __future__ import annotations

__all__ = ["qualify"]


def qualify(reference: str, namespace: str) -> str:
    """``reference`` as a full entry ID: a bare name (no ``:``) means ``namespace``; empty stays empty."""
    if not reference or ":" in reference:
        return reference
    return f"{namespace}:{reference}"

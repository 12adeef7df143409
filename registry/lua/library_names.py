"""Bare entry IDs in library code: the one case where the lint cannot read them as the runtime does.

A bare name means the *calling* entry's namespace (registry.entry_refs.qualify, used by the lint and
by every shim). Library code runs inside the workflow or activity that imports it, so
``funcs.call("charge")`` in a library of namespace ``lib`` imported by a workflow of namespace ``app``
calls ``app:charge``. When any entry that imports the library (directly or through other libraries)
lives in another namespace, such a name is reported (FC127): write the full ID.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Protocol

from registry.diagnostics import Diagnostic
from registry.loader import Entry, Project
from registry.lua.facts import ChunkFacts

__all__ = ["bare_names", "importer_namespaces"]


class _Lint(Protocol):
    entry: Entry
    facts: ChunkFacts

    def diag(self, line: int, col: int, code: str, message: str, hint: str) -> Diagnostic: ...


def importer_namespaces(project: Project) -> dict[str, frozenset[str]]:
    """For each imported library ID: the namespaces of the non-library entries whose code it runs in."""
    imports: dict[str, set[str]] = {}
    for entry in project.entries:
        table = entry.data.get("imports")
        if isinstance(table, Mapping):
            imports[entry.id] = {entry.ref(str(ref)) for ref in table.values() if isinstance(ref, str)}
    found: dict[str, set[str]] = {}
    for entry in project.entries:
        if entry.kind == "library.lua" or entry.id not in imports:
            continue
        seen: set[str] = set()
        todo = list(imports[entry.id])
        while todo:  # iterative: import chains may be long, and cycles are reported elsewhere (FC208)
            library = todo.pop()
            if library in seen:
                continue
            seen.add(library)
            found.setdefault(library, set()).add(entry.namespace)
            todo.extend(imports.get(library, ()))
    return {library: frozenset(spaces) for library, spaces in found.items()}


def bare_names(lint: _Lint, namespaces: frozenset[str]) -> Iterator[Diagnostic]:
    """FC127 for each bare literal ID in a library some entry of another namespace imports."""
    entry = lint.entry
    others = sorted(namespaces - {entry.namespace})
    if entry.kind != "library.lua" or not others:
        return
    for call in lint.facts.calls:
        if ":" in call.target:
            continue
        meant = ", ".join(f"{space}:{call.target}" for space in sorted(namespaces))
        yield lint.diag(call.line, call.col, "FC127",
                        f"{call.api}({call.target!r}): a bare name in library code means the calling entry's "
                        f"namespace, and this library runs in {', '.join(others)} too: {meant}",
                        f"write the full entry ID, e.g. {call.api}(\"{entry.namespace}:{call.target}\")")

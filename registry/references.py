"""Stage 3: references between entries — IDs unique, workers/clients/imports exist with the right kind.

A ``temporal.schedule`` names its workflow (and maybe its client); its ``input`` must satisfy the
workflow's ``input_schema`` (FC213), and two schedules cannot share a schedule ID on one client (FC214).

Only references that passed the schema stage's shape checks are followed here; a
missing or malformed field has already been reported there. A ``function.python``
handler's module is looked up on the python path by the loader (FC210, FC212).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from registry.diagnostics import Diagnostic
from registry.loader import Entry, Project
from registry.lua.modules import ALL_MODULES
from registry.schedule_spec import SCHEDULE_KIND, plain_value
from registry.suggest import EntryNames
from registry.yamlfile import JsonPath

WORKER_PATH: dict[str, JsonPath] = {
    "workflow.lua": ("meta", "temporal", "workflow", "worker"),
    "function.lua": ("meta", "temporal", "activity", "worker"),
    "function.python": ("meta", "temporal", "activity", "worker"),
}
KINDS_WITH_IMPORTS = ("workflow.lua", "function.lua", "library.lua")


def dig(data: Any, path: JsonPath) -> Any:
    """The value at ``path`` inside nested mappings, or None."""
    for part in path:
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def check_references(project: Project, names: EntryNames | None = None) -> list[Diagnostic]:
    """Every reference problem in the project (``names``: the validation's index of IDs, for hints)."""
    by_id = project.by_id()
    names = names if names is not None else EntryNames(project)
    problems = list(_duplicates(project))
    for entry in project.entries:
        problems.extend(_entry_references(entry, by_id, names))
    problems.extend(_import_cycles(project, by_id))
    problems.extend(_workflow_type_clashes(project, by_id))
    problems.extend(_schedule_id_clashes(by_id))
    return problems


def _duplicates(project: Project) -> Iterator[Diagnostic]:
    first: dict[str, Entry] = {}
    for entry in project.entries:
        seen = first.setdefault(entry.id, entry)
        if seen is entry:
            continue
        where = seen.document.position((*seen.path, "name"))
        yield entry.diagnostic(
            ("name",), "FC201",
            f"duplicate entry ID {entry.id!r} (first defined at {seen.document.display}:{where.line})",
            "rename one of the entries; IDs (namespace:name) must be unique")


def _resolve(entry: Entry, sub: JsonPath, want: str, by_id: dict[str, Entry],
             role: str, names: EntryNames) -> tuple[Entry | None, list[Diagnostic]]:
    """Follow the reference at ``sub``; report when it names no entry or one of another kind."""
    value = dig(entry.data, sub)
    if not isinstance(value, str) or not value:
        return None, []
    target_id = entry.ref(value)
    target = by_id.get(target_id)
    if target is None:
        known = names.of((want,))  # sorted once per validation, not per diagnostic
        close = known.closest(target_id)
        hint = (f"did you mean {close!r}? " if close else "") + (
            f"entries of kind {want}: {known.listed()}" if known.names else f"define a {want} entry")
        return None, [entry.diagnostic(sub, "FC202", f"{role} {target_id!r} is not defined", hint)]
    if target.kind != want:
        return None, [entry.diagnostic(sub, "FC206", f"{role} {target_id!r} is a {target.kind} entry, "
                                                     f"not {want}", f"point {sub[-1]} at a {want} entry")]
    return target, []


def _entry_references(entry: Entry, by_id: dict[str, Entry], names: EntryNames) -> Iterator[Diagnostic]:
    if entry.kind == "temporal.worker":
        yield from _resolve(entry, ("client",), "temporal.client", by_id, "client", names)[1]
    worker_path = WORKER_PATH.get(entry.kind)
    if worker_path:
        worker, problems = _resolve(entry, worker_path, "temporal.worker", by_id, "worker", names)
        yield from problems
        if worker is not None:
            client, _ = _resolve(worker, ("client",), "temporal.client", by_id, "client", names)
            if client is None and isinstance(worker.data.get("client"), str):
                yield entry.diagnostic(
                    worker_path, "FC207", f"worker {worker.id!r} has no usable temporal.client "
                    f"({worker.data['client']!r})", f"fix the `client` of {worker.id} "
                    f"({worker.document.display}:{worker.document.position((*worker.path, 'client')).line})")
    if entry.kind == SCHEDULE_KIND:
        yield from _resolve(entry, ("client",), "temporal.client", by_id, "client", names)[1]
        workflow, problems = _resolve(entry, ("workflow",), "workflow.lua", by_id, "workflow", names)
        yield from problems
        if workflow is not None:
            yield from _schedule_input(entry, workflow)
    if entry.kind in KINDS_WITH_IMPORTS:
        imports = entry.data.get("imports")
        if isinstance(imports, dict):
            for alias in imports:
                yield from _resolve(entry, ("imports", alias), "library.lua", by_id, "import", names)[1]
                if alias in ALL_MODULES:
                    yield entry.diagnostic(
                        ("imports", alias), "FC209",
                        f"import alias {alias!r} hides the flowctl module of the same name",
                        "choose another alias for the library", at_key=True)


def _import_cycles(project: Project, by_id: dict[str, Entry]) -> Iterator[Diagnostic]:
    """Report each cycle of library imports once, at the import that closes it."""
    graph: dict[str, list[tuple[str, str]]] = {}
    for entry in by_id.values():
        imports = entry.data.get("imports") if entry.kind == "library.lua" else None
        if isinstance(imports, dict):
            graph[entry.id] = [(alias, entry.ref(v)) for alias, v in imports.items()
                               if isinstance(v, str) and by_id.get(entry.ref(v)) is not None
                               and by_id[entry.ref(v)].kind == "library.lua"]
    reported: set[frozenset[str]] = set()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for root in sorted(graph):
        if root not in state:
            yield from _cycles_from(root, graph, by_id, state, reported)


def _cycles_from(root: str, graph: dict[str, list[tuple[str, str]]], by_id: dict[str, Entry],
                 state: dict[str, int], reported: set[frozenset[str]]) -> Iterator[Diagnostic]:
    """Depth-first search from ``root`` with an explicit stack: a chain of any length cannot overflow."""
    path: list[str] = [root]  # the current import chain
    where: dict[str, int] = {root: 0}  # a node's index in ``path``
    todo: list[Iterator[tuple[str, str]]] = [iter(graph.get(root, []))]
    state[root] = 1
    while todo:
        step = next(todo[-1], None)
        if step is None:
            todo.pop()
            state[path[-1]] = 2
            del where[path.pop()]
            continue
        alias, target = step
        if state.get(target) == 1:
            cycle = [*path[where[target]:], target]
            key = frozenset(cycle)
            if key not in reported:
                reported.add(key)
                yield by_id[path[-1]].diagnostic(
                    ("imports", alias), "FC208", f"import cycle: {' -> '.join(cycle)}",
                    "move the shared code into a library both can import, so imports form a tree")
        elif target not in state:
            state[target] = 1
            where[target] = len(path)
            path.append(target)
            todo.append(iter(graph.get(target, [])))


def _workflow_type_clashes(project: Project, by_id: dict[str, Entry]) -> Iterator[Diagnostic]:
    """Two workflows served by one worker under the same Temporal type could not be told apart."""
    seen: dict[tuple[str, str], Entry] = {}
    for entry in by_id.values():
        if entry.kind != "workflow.lua":
            continue
        worker = dig(entry.data, WORKER_PATH["workflow.lua"])
        name = dig(entry.data, ("meta", "temporal", "workflow", "name"))
        if not isinstance(worker, str):
            continue
        type_name = name if isinstance(name, str) else entry.id
        key = (entry.ref(worker), type_name)
        other = seen.setdefault(key, entry)
        if other is not entry:
            yield entry.diagnostic(
                ("meta", "temporal", "workflow", "name") if isinstance(name, str) else ("name",), "FC211",
                f"workflow type {type_name!r} on worker {key[0]!r} is also used by {other.id}",
                "give one of them another meta.temporal.workflow.name")


def _schedule_input(entry: Entry, workflow: Entry) -> Iterator[Diagnostic]:
    """FC213: a schedule's ``input`` that its workflow's ``input_schema`` refuses."""
    schema = workflow.data.get("input_schema")
    if not isinstance(schema, dict | bool):
        return
    # jsonschema is the slowest import: only for a schedule whose workflow has an input_schema
    from registry.contracts import value_violation

    # the runs get YAML timestamps as ISO 8601 text, so the schema sees them so too; a schema
    # validate refused (FC110, FC117-FC119) accepts every input: the workflow's diagnostic says why
    # runs started without an input are checked as null, as the worker checks them
    error = value_violation(schema, plain_value(entry.data.get("input")))
    if error is not None:
        line = workflow.document.position((*workflow.path, "input_schema")).line
        yield entry.diagnostic(
            ("input", *error.parts) if "input" in entry.data else ("workflow",), "FC213",
            f"input does not match the input_schema of {workflow.id}: {error.message}" if "input" in entry.data
            else f"the schedule gives no `input` (its runs get null), which the input_schema of {workflow.id} "
                 f"refuses: {error.message}",
            f"fix the input, or the workflow's input_schema ({workflow.document.display}:{line})")


def _schedule_id_clashes(by_id: dict[str, Entry]) -> Iterator[Diagnostic]:
    """FC214: two schedules with one schedule ID on the same client would overwrite each other."""
    seen: dict[tuple[str, str], Entry] = {}
    for entry in by_id.values():
        if entry.kind != SCHEDULE_KIND:
            continue
        client = _schedule_client(entry, by_id)
        schedule_id = entry.data.get("schedule_id")
        key = (client or "", schedule_id if isinstance(schedule_id, str) and schedule_id else entry.id)
        other = seen.setdefault(key, entry)
        if client is not None and other is not entry:
            yield entry.diagnostic(
                ("schedule_id",) if "schedule_id" in entry.data else ("name",), "FC214",
                f"schedule ID {key[1]!r} on client {client!r} is also the schedule of {other.id}",
                "give one of them another `schedule_id`")


def _schedule_client(entry: Entry, by_id: dict[str, Entry]) -> str | None:
    """The temporal.client a schedule entry lives on: its own ``client``, else its workflow's worker's."""
    client = entry.data.get("client")
    if isinstance(client, str) and client:
        return entry.ref(client)
    workflow = by_id.get(entry.ref(str(entry.data.get("workflow") or "")))
    worker_ref = dig(workflow.data, WORKER_PATH["workflow.lua"]) if workflow is not None else None
    worker = by_id.get(workflow.ref(worker_ref)) if workflow is not None and isinstance(worker_ref, str) else None
    client = worker.data.get("client") if worker is not None else None
    return worker.ref(client) if worker is not None and isinstance(client, str) else None

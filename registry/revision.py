"""Immutable, content-addressed revisions of entries (pure: no store, no I/O beyond the project).

A revision's digest is the sha256 of a canonical form of the entry: its ID, the entry
mapping serialized deterministically (sorted keys, canonical JSON), the bytes of its Lua
source, and the ID + digest of every library it imports. A library that changes therefore
changes the digest of every entry that imports it, directly or not. A ``function.python``
revision holds its handler module's source instead (found on the python path when the
revision is built; its path relative to that directory is part of the digest), so editing
the handler changes the revision.
"""

from __future__ import annotations

import base64
import datetime
import functools
import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from registry.entry_refs import qualify
from registry.errors import FlowError
from registry.loader import Entry, Project

#: Kinds whose entries carry Lua source text.
LUA_KINDS = frozenset({"workflow.lua", "function.lua", "library.lua"})
#: Kinds that may be imported by name.
LIBRARY_KIND = "library.lua"
WORKFLOW_KIND = "workflow.lua"
#: The kind whose source is its Python handler module, as found on the python path.
PYTHON_KIND = "function.python"
#: Bumped if the canonical form ever changes, so old and new digests never collide.
DIGEST_FORMAT = b"flowctl-revision-v1\x00"

try:  # libyaml is several times faster; the pure-Python classes give the same documents
    from yaml import CSafeDumper as _Dumper
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on the PyYAML build
    from yaml import SafeDumper as _Dumper  # type: ignore[assignment]
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

_URI_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


@dataclass(frozen=True)
class Revision:
    """One immutable revision of an entry, with everything a worker needs to run it."""

    entry_id: str
    kind: str
    #: sha256 hex of canonical YAML + source bytes + imported libraries' digests
    digest: str
    #: the entry mapping as written (``${env:...}`` unresolved)
    data: dict[str, Any]
    #: Lua source text; for ``function.python``, the handler module's Python source (None: no
    #: source, or a handler module that was not found on the python path)
    source: str | None
    #: e.g. ``order_workflow.lua``, the Lua chunk name, so errors read file:line; for
    #: ``function.python``, the handler module file relative to its python path (``app/handlers.py``)
    source_name: str | None
    #: ``require()`` alias -> library entry ID
    imports: dict[str, str] = field(default_factory=dict)
    #: every library reachable through imports, transitively, by entry ID
    libraries: dict[str, Revision] = field(default_factory=dict, repr=False)

    @property
    def namespace(self) -> str:
        return self.entry_id.split(":", 1)[0]

    @property
    def name(self) -> str:
        return self.entry_id.split(":", 1)[1]

    @property
    def short_digest(self) -> str:
        """The first 12 hex digits, as shown to users (like a git short hash)."""
        return self.digest[:12]

    def ref(self, reference: Any) -> str:
        """A reference written in this entry (its data or its Lua code) as a full entry ID."""
        return qualify(str(reference) if reference else "", self.namespace)

    @property
    def workflow_type(self) -> str:
        """The Temporal workflow type a workflow entry registers: its custom name, else its entry ID."""
        name = _section(self.data, "workflow").get("name")
        return name if isinstance(name, str) and name else self.entry_id

    @property
    def worker_id(self) -> str | None:
        """The temporal.worker entry serving this workflow or activity entry (``meta.temporal.*.worker``)."""
        worker = _section(self.data, "workflow" if self.kind == WORKFLOW_KIND else "activity").get("worker")
        return self.ref(worker) if isinstance(worker, str) and worker else None

    @property
    def task_queue(self) -> str:
        """A temporal.worker entry's task queue: its ``task_queue``, else its entry ID."""
        queue = self.data.get("task_queue")
        return queue if isinstance(queue, str) and queue else self.entry_id

    @functools.cached_property
    def handler_file(self) -> HandlerFile | None:
        """A ``function.python`` revision's handler module file and its sha256 (None: not resolved)."""
        if self.kind != PYTHON_KIND or self.source is None or self.source_name is None:
            return None
        return HandlerFile(self.source_name, hashlib.sha256(self.source.encode("utf-8")).hexdigest())

    def to_dict(self, *, include_source: bool = True) -> dict[str, Any]:
        """A JSON-ready view (``--json`` output); libraries by entry ID -> digest."""
        result: dict[str, Any] = {
            "id": self.entry_id, "kind": self.kind, "digest": self.digest,
            "data": _canonical(self.data), "source_name": self.source_name, "imports": dict(self.imports),
            "libraries": {lib_id: lib.digest for lib_id, lib in sorted(self.libraries.items())},
        }
        if self.kind == PYTHON_KIND:
            result["handler_file"] = self.handler_file.to_dict() if self.handler_file else None
        if include_source:
            result["source"] = self.source
        return result


@dataclass(frozen=True)
class HandlerFile:
    """The module file a ``function.python`` handler was found in when its revision was built."""

    #: relative to the python path directory it was found in, posix (``app/handlers.py``)
    path: str
    #: sha256 hex of the file's bytes
    sha256: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "sha256": self.sha256}


def _section(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """``meta.temporal.<name>`` of an entry mapping, or an empty mapping."""
    meta = data.get("meta")
    temporal = meta.get("temporal") if isinstance(meta, Mapping) else None
    section = temporal.get(name) if isinstance(temporal, Mapping) else None
    return section if isinstance(section, Mapping) else {}


def canonical_json(value: Any) -> str:
    """Serialize ``value`` deterministically: sorted keys, no spaces, UTF-8, tagged non-JSON types."""
    return json.dumps(_canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def dump_data(data: Mapping[str, Any]) -> str:
    """The entry mapping as YAML, keys in the order written (safe YAML types round-trip exactly)."""
    return yaml.dump(dict(data), Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                     default_flow_style=False)


def load_data(text: str) -> dict[str, Any]:
    """The inverse of :func:`dump_data`."""
    loaded = yaml.load(text, Loader=_Loader)  # safe: CSafeLoader / SafeLoader
    return loaded if isinstance(loaded, dict) else {}


def _canonical(value: Any) -> Any:
    """Map YAML values onto JSON so different values never share a form (``!`` prefixes are escaped)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return {"!float": repr(value)}
    if isinstance(value, Mapping):
        return {_canonical_key(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, datetime.datetime | datetime.date):
        return {"!timestamp": value.isoformat()}
    if isinstance(value, bytes):
        return {"!binary": base64.b64encode(value).decode("ascii")}
    if isinstance(value, set | frozenset):
        return {"!set": sorted(canonical_json(v) for v in value)}
    raise FlowError(f"cannot store a value of type {type(value).__name__} in the registry",
                    hint="use plain YAML scalars, lists and mappings in entries")


def _canonical_key(key: Any) -> str:
    if isinstance(key, str):
        # a user key starting with "!" could otherwise mimic a type tag or a non-string key
        return "!" + key if key.startswith("!") else key
    return "!key:" + canonical_json(key)


def compute_digest(entry_id: str, data: Mapping[str, Any], source: str | None,
                   libraries: Mapping[str, str], *, handler_path: str | None = None) -> str:
    """The revision digest from its parts; ``libraries`` maps imported entry ID -> its digest.

    ``handler_path``: a ``function.python`` handler module's file (``source`` is its code). Absent
    for every other kind, so their digests are those of earlier flowctl versions.
    """
    h = hashlib.sha256(DIGEST_FORMAT)
    for part in (entry_id.encode(), canonical_json(data).encode()):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    if source is None:
        h.update(b"\x00nosource")
    else:
        raw = source.encode("utf-8")
        h.update(b"\x01" + len(raw).to_bytes(8, "big"))
        h.update(raw)
    for lib_id in sorted(libraries):
        h.update(f"\x02{lib_id}\x00{libraries[lib_id]}".encode())
    if handler_path is not None:
        raw = handler_path.encode("utf-8")
        h.update(b"\x03" + len(raw).to_bytes(8, "big") + raw)
    return h.hexdigest()


def build_revisions(project: Project) -> dict[str, Revision]:
    """Build every entry's revision from a loaded, valid project, by entry ID.

    Raises FlowError for what validation should have caught (a missing source, an import
    of an unknown or non-library entry, an import cycle), so nothing half-built escapes.
    """
    entries = project.by_id()
    builder = _RevisionBuilder(entries, project.root)
    return {entry_id: builder.revision(entry_id) for entry_id in sorted(entries)}


class _RevisionBuilder:
    """Builds revisions depth-first through imports, memoized, with a cycle guard.

    The walk keeps its own stack (the current import chain), so a chain of any length builds.
    """

    def __init__(self, entries: dict[str, Entry], root: Path) -> None:
        self.entries = entries
        self.root = root
        self.done: dict[str, Revision] = {}

    def revision(self, entry_id: str) -> Revision:
        chain: list[tuple[str, dict[str, str]]] = []  # entry ID and its imports, root first
        on_chain: set[str] = set()
        want: str | None = entry_id
        while True:
            if want is not None and want not in self.done:
                if want in on_chain:
                    ids = [chained for chained, _ in chain]
                    cycle = " -> ".join([*ids[ids.index(want):], want])
                    raise FlowError(f"import cycle: {cycle}",
                                    hint="libraries must not import each other in a circle; move the shared "
                                         "code into a third library")
                chain.append((want, self._imports(self.entries[want])))
                on_chain.add(want)
            if not chain:
                return self.done[entry_id]
            current, imports = chain[-1]
            want = next((lib_id for lib_id in imports.values() if lib_id not in self.done), None)
            if want is None:
                self.done[current] = self._built(self.entries[current], imports)
                chain.pop()
                on_chain.discard(current)

    def _built(self, entry: Entry, imports: dict[str, str]) -> Revision:
        """The revision of ``entry`` once every library it imports is built."""
        libraries: dict[str, Revision] = {}
        for lib_id in imports.values():
            lib = self.done[lib_id]
            libraries[lib_id] = lib
            libraries.update(lib.libraries)
        source, source_name = self._source(entry)
        digest = compute_digest(entry.id, entry.data, source,
                                {lib_id: self.done[lib_id].digest for lib_id in set(imports.values())},
                                handler_path=source_name if entry.kind == PYTHON_KIND else None)
        return Revision(entry_id=entry.id, kind=entry.kind, digest=digest, data=entry.data, source=source,
                        source_name=source_name, imports=imports, libraries=libraries)

    def _imports(self, entry: Entry) -> dict[str, str]:
        raw = entry.data.get("imports") or {}
        if not isinstance(raw, Mapping):
            raise FlowError(f"{entry.id}: imports must be a mapping of alias to library entry ID",
                            hint="run `flowctl validate` for the exact location")
        imports: dict[str, str] = {}
        for alias, ref in raw.items():
            if not isinstance(ref, str):
                raise FlowError(f"{entry.id}: import {alias!r} must name a library entry",
                                hint="run `flowctl validate` for the exact location")
            target = entry.ref(ref)
            found = self.entries.get(target)
            if found is None or found.kind != LIBRARY_KIND:
                what = "does not exist" if found is None else f"is a {found.kind}, not a {LIBRARY_KIND}"
                raise FlowError(f"{entry.id}: import {alias!r} -> {target} {what}",
                                hint="run `flowctl validate` for the exact location")
            imports[str(alias)] = target
        return imports

    def _source(self, entry: Entry) -> tuple[str | None, str | None]:
        if entry.kind == PYTHON_KIND:  # the handler module, when the loader found it on the python path
            return entry.source_text, entry.source_name
        if entry.kind not in LUA_KINDS:
            return None, None
        if entry.source_text is not None and entry.source_path is not None:
            try:
                name = entry.source_path.relative_to(self.root).as_posix()
            except ValueError:
                name = entry.source_path.name
            return entry.source_text, name
        raw = entry.data.get("source")
        if isinstance(raw, str) and raw and not _URI_RE.match(raw):
            return raw, f"{entry.name}.lua"  # inline Lua code in the YAML
        raise FlowError(f"{entry.id}: has no readable Lua source",
                        hint="run `flowctl validate`: it reports the missing or unreadable source file")

"""Load a project: every entry file under the given paths, as entries with source positions.

The loader is deliberately forgiving: it builds an :class:`Entry` from every list
item that has a string ``name`` and ``kind`` and leaves the judging of shapes to
the schema stage, so one run reports every problem at once.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib.machinery import PathFinder
from pathlib import Path
from typing import Any

from registry.diagnostics import Diagnostic, Severity, display_path
from registry.entry_refs import qualify
from registry.yamlfile import JsonPath, YamlDocument, parse_yaml

ENTRY_SUFFIXES = (".yaml", ".yml")
#: Directories never searched for entry files.
SKIPPED_DIRS = {".git", ".flowctl", "node_modules", "__pycache__", ".venv", "venv"}
#: Lua sources larger than this are refused (they would also blow the sandbox memory limit).
MAX_SOURCE_BYTES = 2 * 1024 * 1024
NAME_RE = re.compile(r"^[a-z0-9_.-]+$")
#: The longest file name (one path component, in bytes) file systems take.
NAME_MAX = 255


@dataclass(frozen=True)
class Entry:
    """One entry of an entry file, with everything needed to locate its problems."""

    namespace: str
    name: str
    kind: str
    #: the entry mapping exactly as written (``${env:…}`` left unresolved)
    data: dict[str, Any]
    document: YamlDocument = field(repr=False, compare=False)
    #: JSON path of this entry inside its file, e.g. ``("entries", 2)``
    path: JsonPath = ()
    #: the resolved ``file://`` source, when the entry has one that could be read; for a
    #: ``function.python`` entry, its handler module's file found on the python path
    source_path: Path | None = None
    source_text: str | None = None
    #: ``function.python`` only: the handler module's file relative to its python path directory
    source_name: str | None = None

    @property
    def id(self) -> str:
        return f"{self.namespace}:{self.name}"

    @property
    def file(self) -> Path:
        return self.document.path

    def diagnostic(self, sub: JsonPath, code: str, message: str, hint: str = "", **kw: Any) -> Diagnostic:
        """A diagnostic located at ``sub`` inside this entry."""
        return self.document.diagnostic((*self.path, *sub), code, message, hint, **kw)

    def ref(self, value: str) -> str:
        """Expand a reference: a bare name means this entry's namespace."""
        return qualify(value, self.namespace)


@dataclass
class Project:
    """All entries found under the given paths, plus the problems found while loading them."""

    root: Path
    #: where ``function.python`` handler modules are looked up, in order (as a worker's ``--python-path``)
    python_paths: list[Path] = field(default_factory=list)
    documents: list[YamlDocument] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def by_id(self) -> dict[str, Entry]:
        """Entries by ID; with duplicates, the first one wins (the others are diagnosed)."""
        result: dict[str, Entry] = {}
        for entry in self.entries:
            result.setdefault(entry.id, entry)
        return result


def find_entry_files(paths: Sequence[Path]) -> tuple[list[Path], list[Diagnostic]]:
    """Expand directories into their ``*.yaml``/``*.yml`` files, sorted for stable output."""
    files: list[Path] = []
    problems: list[Diagnostic] = []
    for path in paths:
        problem = _unusable_path(str(path))
        if problem:
            problems.append(Diagnostic(file=display_path(path), line=1, col=1, code="FC001",
                                       message=f"cannot read this path: {problem}",
                                       hint="pass an entries directory or YAML file that exists"))
            continue
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.suffix in ENTRY_SUFFIXES
                and p.is_file()
                and not SKIPPED_DIRS.intersection(p.relative_to(path).parts[:-1])
            )
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            problems.append(
                Diagnostic(
                    file=display_path(path), line=1, col=1, code="FC001",
                    message="no such file or directory",
                    hint="pass an entries directory or YAML file that exists",
                )
            )
    unique = list(dict.fromkeys(p.resolve() for p in files))
    return unique, problems


def project_root(paths: Sequence[Path]) -> Path:
    """The directory sources may not escape: the common parent of the given paths."""
    resolved = [(p if _is_dir(p) else p.parent).resolve() for p in paths] or [Path.cwd().resolve()]
    root = resolved[0]
    for other in resolved[1:]:
        while not other.is_relative_to(root):
            root = root.parent
    return root


def default_python_paths(paths: Sequence[Path]) -> list[Path]:
    """Where handlers are looked up without ``--python-path``: the entries directories, as a worker does."""
    return [p for p in paths if _is_dir(p)] or [project_root(paths)]


def load_project(paths: Iterable[Path | str], *, python_paths: Sequence[Path | str] | None = None) -> Project:
    """Parse every entry file under ``paths`` and build the entries (stage 1 of validation).

    ``python_paths`` (default: the entries directories) is where ``function.python`` handler
    modules are found, by file search only: user code is never imported here.
    """
    path_list = [Path(p) for p in paths] or [Path("entries")]
    project = Project(root=project_root(path_list),
                      python_paths=[Path(p) for p in python_paths] if python_paths is not None
                      else default_python_paths(path_list))
    files, problems = find_entry_files(path_list)
    project.diagnostics.extend(problems)
    for file in files:
        doc = parse_yaml(file)
        project.documents.append(doc)
        project.diagnostics.extend(doc.diagnostics)
        if doc.data is not None:
            project.entries.extend(_entries_of(doc, project))
    return project


def _entries_of(doc: YamlDocument, project: Project) -> list[Entry]:
    data = doc.data
    if not isinstance(data, dict):
        return []
    namespace = data.get("namespace")
    items = data.get("entries")
    if not isinstance(namespace, str) or not isinstance(items, list):
        return []  # the schema stage reports the missing or wrong field
    entries = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        name, kind = item.get("name"), item.get("kind")
        if not isinstance(name, str) or not isinstance(kind, str):
            continue
        entry = Entry(namespace=namespace, name=name, kind=kind, data=item, document=doc,
                      path=("entries", index))
        source = item.get("source")
        if isinstance(source, str):
            entry = _with_source(entry, source, project)
        if kind == "function.python":
            entry = _with_handler(entry, project)
        entries.append(entry)
    return entries


def _with_source(entry: Entry, source: str, project: Project) -> Entry:
    """Resolve and read a ``file://`` source; problems go to the project's diagnostics."""
    if not source.startswith("file://"):
        return entry  # inline or unsupported scheme: the schema stage judges it
    relative = source.removeprefix("file://")
    where = ("source",)
    problem = _unusable_path(relative)
    if problem:
        project.diagnostics.append(entry.diagnostic(
            where, "FC215", f"source {source!r} is not a usable file name: {problem}",
            "name the Lua file with a plain relative path, e.g. file://order.lua"))
        return entry
    if not relative or Path(relative).is_absolute():
        project.diagnostics.append(entry.diagnostic(
            where, "FC203", f"source {source!r} must be a path relative to the YAML file",
            "write it as file://name.lua, relative to this YAML file"))
        return entry
    # os.path rather than pathlib: this runs for every entry and validate must stay fast
    target = Path(os.path.realpath(os.path.join(entry.file.parent, relative)))
    if not target.is_relative_to(project.root):
        project.diagnostics.append(entry.diagnostic(
            where, "FC203", f"source {source!r} points outside the project directory",
            "keep Lua sources inside the entries directory you validate/apply"))
        return entry
    try:
        info = os.stat(target)
    except OSError:
        info = None
    if info is None or not stat.S_ISREG(info.st_mode):
        project.diagnostics.append(entry.diagnostic(
            where, "FC204", f"source file {display_path(target)} does not exist",
            "create the file or fix the path (it is relative to this YAML file)"))
        return entry
    try:
        if info.st_size > MAX_SOURCE_BYTES:
            project.diagnostics.append(entry.diagnostic(
                where, "FC205", f"source file {display_path(target)} is larger than "
                f"{MAX_SOURCE_BYTES // (1024 * 1024)} MiB", "split the code into library.lua entries"))
            return entry
        with open(target, "rb") as handle:
            text = handle.read().decode("utf-8")
    except UnicodeDecodeError:
        project.diagnostics.append(entry.diagnostic(
            where, "FC205", f"source file {display_path(target)} is not valid UTF-8",
            "save the Lua file as UTF-8"))
        return entry
    except OSError as exc:
        project.diagnostics.append(entry.diagnostic(
            where, "FC205", f"cannot read source file {display_path(target)}: {exc.strerror or exc}",
            "check the file's permissions"))
        return entry
    return Entry(namespace=entry.namespace, name=entry.name, kind=entry.kind, data=entry.data,
                 document=entry.document, path=entry.path, source_path=target, source_text=text)


def _is_dir(path: Path) -> bool:
    """``path.is_dir()``, False for a path no file system can have (FC001 reports it)."""
    try:
        return path.is_dir()
    except OSError:
        return False


def _unusable_path(path: str) -> str:
    """Why no file system can have ``path`` (a NUL, a name over 255 bytes), or an empty string."""
    if "\0" in path:
        return "it holds a NUL character"
    longest = max((len(os.fsencode(part)) for part in path.split(os.sep)), default=0)
    return f"a path component is {longest} bytes long, over the 255-byte limit" if longest > NAME_MAX else ""


def find_module_file(module: str, python_paths: Sequence[Path]) -> tuple[Path, str] | None:
    """The source file ``import module`` would load from ``python_paths`` (first match, in order).

    By file search only (``pkg/mod/__init__.py``, then ``pkg/mod.py``, as Python prefers a
    package): nothing is imported. Returns the file and its path relative to the directory
    it was found in (posix), or None.
    """
    parts = module.split(".")
    if not all(part.isidentifier() for part in parts):
        return None
    relative = "/".join(parts)
    for base in python_paths:
        for candidate in (f"{relative}/__init__.py", f"{relative}.py"):
            if os.path.isfile(os.path.join(base, candidate)):
                return Path(os.path.abspath(os.path.join(base, candidate))), candidate
    return None


def _with_handler(entry: Entry, project: Project) -> Entry:
    """Find and read a ``function.python`` handler's module on the python path, so the revision records it.

    A module that is not a readable source file there is diagnosed as a warning (the worker may
    still import it, e.g. from an installed package): FC210 when it is nowhere, FC212 when it is
    found but cannot be recorded.
    """
    handler = entry.data.get("handler")
    if not isinstance(handler, str) or ":" not in handler:
        return entry  # the schema stage reports a missing or malformed handler
    module = handler.split(":", 1)[0]
    where, shown = ("handler",), _shown_paths(project.python_paths)
    fix = "pass the directory the worker imports it from with --python-path DIR (default: the entries directory)"
    found = find_module_file(module, project.python_paths)
    if found is None:
        relative = module.replace(".", "/")
        if PathFinder.find_spec(module.split(".")[0]) is None:  # installed? found without importing it
            project.diagnostics.append(entry.diagnostic(
                where, "FC210", f"handler module {module!r} is neither on the python path ({shown}) nor installed",
                f"create {relative}.py under {shown} or install the package that provides it; or {fix}",
                severity=Severity.WARNING))
        else:
            project.diagnostics.append(entry.diagnostic(
                where, "FC212", f"handler module {module!r} is installed but not on the python path ({shown}): "
                "its code is not part of the revision, so diff cannot show its changes",
                f"{fix}; looked for {relative}/__init__.py and {relative}.py", severity=Severity.WARNING))
        return entry
    path, name = found
    problem, text = "", ""
    try:
        if os.stat(path).st_size > MAX_SOURCE_BYTES:
            problem = f"is larger than {MAX_SOURCE_BYTES // (1024 * 1024)} MiB"
        else:
            with open(path, "rb") as handle:
                text = handle.read().decode("utf-8")
    except UnicodeDecodeError:
        problem = "is not valid UTF-8"
    except OSError as exc:
        problem = f"cannot be read: {exc.strerror or exc}"
    if problem:
        project.diagnostics.append(entry.diagnostic(
            where, "FC212", f"handler module file {display_path(path)} {problem}: its code is not part of the "
            "revision", "save the module as UTF-8 text under 2 MiB (split a bigger one)",
            severity=Severity.WARNING))
        return entry
    return Entry(namespace=entry.namespace, name=entry.name, kind=entry.kind, data=entry.data,
                 document=entry.document, path=entry.path, source_path=path, source_text=text, source_name=name)


def _shown_paths(paths: Sequence[Path]) -> str:
    return ", ".join(display_path(p) for p in paths) or "no directory"

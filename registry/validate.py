"""``flowctl validate``: run the five stages of docs/diagnostics.md and collect every problem.

1. YAML (``registry.yamlfile``, via ``registry.loader``), 2. JSON Schema
(``registry.schema_check``), 3. references (``registry.references``), 4. Lua syntax and
5. lint (``registry.lua``). No stage stops at the first problem, and later stages
skip only what an earlier one already proved unreadable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from registry.diagnostics import Diagnostic, Severity, display_path
from registry.loader import Project, load_project
from registry.lua.check import check_lua
from registry.references import check_references
from registry.schema_cache import SchemaResultCache
from registry.suggest import EntryNames

__all__ = ["ValidationReport", "validate_project"]


@dataclass
class ValidationReport:
    """The loaded project and every diagnostic found in it, sorted by file and position."""

    project: Project
    diagnostics: list[Diagnostic] = field(default_factory=list)
    strict: bool = False

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.WARNING]

    @property
    def ok(self) -> bool:
        """No errors; with ``strict``, no warnings either."""
        return not (self.errors or (self.strict and self.warnings))


def validate_project(
    paths: Sequence[Path | str], *, strict: bool = False, cache_dir: Path | None = None,
    python_paths: Sequence[Path | str] | None = None,
) -> ValidationReport:
    """Validate the entry files under ``paths`` (directories or files; default ``entries``).

    ``cache_dir`` holds the Lua analysis cache and the list of entry files known to pass
    the schema stage (both keyed on file bytes and the flowctl version, so never stale);
    None disables them. ``python_paths`` (default: the entries directories) is where
    ``function.python`` handler modules are looked up (``--python-path``).
    """
    path_list = [Path(p) for p in paths] or [Path("entries")]
    project = load_project(path_list, python_paths=python_paths)
    found: list[Diagnostic] = list(project.diagnostics)
    if not project.documents and not found:
        shown = ", ".join(display_path(p) for p in path_list)
        found.append(Diagnostic(
            file=shown, line=1, col=1, code="FC008", message="no entry files (*.yaml, *.yml) found",
            hint="pass the directory that holds your entry files", severity=Severity.WARNING))
    schema_results = SchemaResultCache(cache_dir)
    for doc in project.documents:
        if doc.data is None or schema_results.is_valid(doc.digest):
            continue
        # imported here: jsonschema is the slowest import, and a warm run may not need it
        from registry.schema_check import check_document

        problems = check_document(doc)
        if not problems:
            schema_results.remember(doc.digest)
        found.extend(problems)
    schema_results.save()
    names = EntryNames(project)  # the "did you mean" indexes, built once for both stages
    found.extend(check_references(project, names))
    found.extend(check_lua(project, cache_dir=cache_dir, names=names))
    return ValidationReport(project=project, diagnostics=sorted(set(found)), strict=strict)

"""``flowctl init [DIR]``: a project that validates, tests and runs at once.

The templates ship in the package (``runner/project/templates/``): ``common/`` for every project
(``.gitignore``, ``.pre-commit-config.yaml``, ``.vscode/settings.json``, a README; a ``dot-`` prefix
becomes ``.``) and one folder per example with its ``entries/`` (a client, a worker, a workflow, an
activity and a Lua test; ``{{namespace}}`` is replaced). Editor support comes from the same code as
``flowctl stubs`` and ``flowctl schema export``: ``.luarc.json`` with ``.editor/lua``, and ``.editor/schemas``
which every entry file's ``# yaml-language-server: $schema=`` modeline names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any

from registry.errors import FlowError
from registry.schema_check import schema_names
from registry.schema_export import CATALOG, export_schemas
from runner.project.stubs import LIBRARY, shipped_stubs, write_stubs

__all__ = ["EXAMPLES", "SCHEMAS", "InitResult", "init_project"]

#: ``--example`` choices.
EXAMPLES = ("order", "saga", "actor", "empty")
#: Where a project keeps the exported schemas its modelines name.
SCHEMAS = ".editor/schemas"
_NAME = re.compile(r"^[a-z0-9_.-]+$")


@dataclass
class InitResult:
    """What ``flowctl init`` wrote."""

    directory: Path
    example: str
    namespace: str
    files: list[Path] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"directory": str(self.directory), "example": self.example, "namespace": self.namespace,
                "files": [str(f) for f in self.files]}


def _templates(folder: Traversable, prefix: str = "") -> dict[str, str]:
    """Relative target path -> text of every template file under ``folder``."""
    found: dict[str, str] = {}
    for item in folder.iterdir():
        name = "." + item.name[4:] if item.name.startswith("dot-") else item.name
        if item.is_dir():
            found.update(_templates(item, f"{prefix}{name}/"))
        elif not item.name.endswith((".pyc", ".pyo")):
            found[prefix + name] = item.read_text(encoding="utf-8")
    return found


def _planned(example: str, namespace: str) -> dict[str, str]:
    root = resources.files("runner.project").joinpath("templates")
    files = {**_templates(root.joinpath("common")), **_templates(root.joinpath(example))}
    return {path: text.replace("{{namespace}}", namespace) for path, text in files.items()}


def init_project(directory: Path, *, namespace: str = "app", example: str = "order",
                 force: bool = False) -> InitResult:
    """Scaffold ``example`` into ``directory``; refuse to overwrite a file unless ``force``."""
    if example not in EXAMPLES:
        raise FlowError(f"no example `{example}`", hint=f"pick one of {', '.join(EXAMPLES)}")
    if not _NAME.match(namespace):
        raise FlowError(f"`{namespace}` is not a namespace name",
                        hint="use lower-case letters, digits, '_', '.' and '-', e.g. --namespace shop")
    if directory.exists() and not directory.is_dir():
        raise FlowError(f"{directory} exists and is not a directory", hint="pass a new or existing directory")
    files = _planned(example, namespace)
    generated = [".luarc.json", *(f"{LIBRARY}/{name}" for name in shipped_stubs()),
                 *(f"{SCHEMAS}/{name}" for name in [*schema_names(), CATALOG])]
    taken = sorted(p for p in [*files, *generated] if (directory / p).exists())
    if taken and not force:
        shown = ", ".join(taken[:5]) + (f" and {len(taken) - 5} more" if len(taken) > 5 else "")
        raise FlowError(f"{directory} already has {shown}",
                        hint="pick an empty directory, or pass --force to overwrite these files")
    if force and (directory / ".luarc.json").exists():
        (directory / ".luarc.json").unlink()  # rewritten below, not merged into
    result = InitResult(directory, example, namespace)
    try:
        for path, text in sorted(files.items()):
            target = directory / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            result.files.append(target)
    except OSError as exc:
        raise FlowError(f"cannot write {directory}: {exc.strerror or exc}",
                        hint="check that the directory is writable") from exc
    stubs = write_stubs(directory)
    result.files += [*stubs.files, *([stubs.luarc] if stubs.luarc else [])]
    result.files += export_schemas(directory / SCHEMAS)
    return result

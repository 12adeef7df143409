"""LuaLS ``---@meta`` stubs and docs/lua-api.md's API tables, generated from the API description.

``flowctl stubs [DIR]`` writes the stubs shipped in ``runner/project/stubs/`` into ``DIR/.editor/lua``
and a ``DIR/.luarc.json`` that points lua-language-server at them (Lua 5.4, the sandbox's globals: the
libraries the sandbox removes are switched off). ``python -m runner.project.stubs`` regenerates the
shipped stubs and the marked regions of docs/lua-api.md from ``lua_api.yaml`` (a test fails when they differ).
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from registry.errors import FlowError
from runner.project.api import Api, ClassDoc, Function, ModuleDoc, Param, load_api

__all__ = ["LIBRARY", "StubsWritten", "docs_region", "luarc", "render_docs", "stub_files", "write_stubs"]

#: Where the stubs go inside a project (``.luarc.json``'s ``workspace.library``).
LIBRARY = ".editor/lua"
#: Lua libraries LuaLS knows that the sandbox does not have (``os`` comes back from the stubs, reduced).
DISABLED_BUILTINS = ("io", "debug", "package", "os", "ffi", "jit", "bit", "bit32", "table.new", "table.clear")
#: ``<!-- generated: funcs Executor -->`` ... ``<!-- /generated -->``: a region of docs/lua-api.md.
_REGION = re.compile(r"(<!-- generated: (?P<names>[^>]*?) -->\n).*?(<!-- /generated -->)", re.S)


def _doc_lines(text: str) -> list[str]:
    return [f"---{line}".rstrip() for line in text.splitlines()] if text else []


def _function(fn: Function, owner: str, sep: str = ".") -> list[str]:
    lines = _doc_lines(fn.doc)
    if fn.only:
        lines += ["---", f"---Only in {fn.only} entries."]
    if fn.errors:
        lines += ["---", f"---Errors: {fn.errors}"]
    for p in fn.params:
        lines.append(f"---@param {p.name}{'?' if p.optional else ''} {p.type}")
    lines += [f"---@return {r.type} {r.name}" for r in fn.returns]
    lines += [f"---@overload {o}" for o in fn.overloads]
    args = ", ".join(p.name for p in fn.params)
    return [*lines, f"function {owner}{sep}{fn.name}({args}) end", ""]


def _fields(fields: tuple[tuple[Param, str], ...]) -> list[str]:
    return [f"---@field {p.name}{'?' if p.optional else ''} {p.type} {doc}".rstrip() for p, doc in fields]


def _module(module: ModuleDoc) -> str:
    plain = tuple((p, d) for p, d in module.fields if p.type != "table")
    lines = [f"---@meta {module.name}", "", *_doc_lines(module.doc), f"---@class {module.name}lib", *_fields(plain),
             f"{module.name} = {{}}", ""]
    lines += [f"{module.name}.{p.name} = {{}}" for p, _ in module.fields if p.type == "table"]
    if len(lines) > len(plain) + 6:
        lines.append("")
    for fn in module.functions:
        lines += _function(fn, module.name)
    return "\n".join([*lines, f"return {module.name}", ""])


def _class(cls: ClassDoc) -> list[str]:
    lines = [*_doc_lines(cls.doc), f"---@class {cls.name}", *_fields(cls.fields)]
    lines += [f"---@operator {op}" for op in cls.operators]
    lines += [f"local {cls.name} = {{}}", ""]
    for fn in cls.methods:
        lines += _function(fn, cls.name, ":")
    return lines


def _types(api: Api) -> str:
    lines = ["---@meta flowctl", "", "-- flowctl's object types and the table shapes the modules take and return.", ""]
    for name, (type_, doc) in api.aliases.items():
        lines += [*_doc_lines(doc), f"---@alias {name} {type_}", ""]
    for cls in api.classes:
        lines += _class(cls)
    return "\n".join(lines)


def _std(api: Api) -> str:
    header = "-- The Lua functions the sandbox replaces or adds (docs/sandbox.md): `os` has these only."
    lines = ["---@meta std", "", header, "", "os = {}", ""]
    for raw in api.globals.get("stubs", []):
        fn = Function.parse(raw, "globals")
        owner, _, name = fn.name.rpartition(".")
        lines += _function(Function(name, fn.params, fn.returns, fn.doc, fn.errors, fn.only), owner)
    return "\n".join(lines)


def stub_files(api: Api | None = None) -> dict[str, str]:
    """File name -> text of every stub: one per module (``require`` finds it by name), types, std."""
    api = api or load_api()
    files = {f"{m.name}.lua": _module(m) for m in api.modules}
    files["flowctl.lua"] = _types(api)
    files["std.lua"] = _std(api)
    return files


def luarc(library: str = LIBRARY) -> dict[str, Any]:
    """The settings flowctl needs in ``.luarc.json``: Lua 5.4, the stubs, the sandbox's libraries only."""
    return {"runtime": {"version": "Lua 5.4", "builtin": dict.fromkeys(DISABLED_BUILTINS, "disable")},
            "workspace": {"library": [library], "checkThirdParty": False, "ignoreDir": [".flowctl"]}}


def _merge(base: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in ours.items():
        old = merged.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            merged[key] = _merge(old, value)
        elif isinstance(value, list) and isinstance(old, list):
            merged[key] = [*old, *(v for v in value if v not in old)]
        else:
            merged[key] = value
    return merged


@dataclass
class StubsWritten:
    """What ``flowctl stubs`` wrote."""

    directory: Path
    files: list[Path] = field(default_factory=list)
    luarc: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"directory": str(self.directory), "files": [str(f) for f in self.files],
                "luarc": str(self.luarc) if self.luarc else None}


def shipped_stubs() -> dict[str, str]:
    """The stubs shipped in the package (``runner/project/stubs/``)."""
    folder = resources.files("runner.project").joinpath("stubs")
    return {f.name: f.read_text(encoding="utf-8") for f in folder.iterdir() if f.name.endswith(".lua")}


def write_stubs(project: Path) -> StubsWritten:
    """Write the stubs into ``project/.editor/lua`` and merge flowctl's settings into ``project/.luarc.json``."""
    result = StubsWritten(project / LIBRARY)
    luarc_path = project / ".luarc.json"
    try:
        existing = json.loads(luarc_path.read_text(encoding="utf-8")) if luarc_path.exists() else {}
    except (OSError, ValueError) as exc:
        raise FlowError(f"{luarc_path}: cannot read it as JSON ({exc})",
                        hint="fix or remove it; flowctl stubs merges its settings into it") from exc
    if not isinstance(existing, dict):
        raise FlowError(f"{luarc_path}: not a JSON object", hint="fix or remove it")
    try:
        result.directory.mkdir(parents=True, exist_ok=True)
        for name, text in sorted(shipped_stubs().items()):
            target = result.directory / name
            target.write_text(text, encoding="utf-8")
            result.files.append(target)
        luarc_path.write_text(json.dumps(_merge(existing, luarc()), indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise FlowError(f"cannot write the Lua stubs into {project}: {exc.strerror or exc}",
                        hint="check that the directory is writable") from exc
    result.luarc = luarc_path
    return result


# ---------------------------------------------------------------- docs/lua-api.md


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _returns(fn: Function) -> str:
    return ", ".join(f"`{r.name}: {r.type}`" for r in fn.returns) or "—"


def _notes(fn: Function) -> str:
    return (f" Only in `{fn.only}`." if fn.only else "") + (f" Errors: {_cell(fn.errors)}." if fn.errors else "")


def _module_table(module: ModuleDoc) -> list[str]:
    rows = [f"| `{fn.call(module.name)}` | {_returns(fn)} | {_cell(fn.doc)}{_notes(fn)} |" for fn in module.functions]
    rows += [f"| `{module.name}.{p.name}` | `{_cell(p.type)}` | {_cell(doc)} |" for p, doc in module.fields
             if p.type != "table"]
    kinds = ", ".join(f"`{k}`" for k in module.kinds)
    return [f"**`{module.name}`** ({kinds}) — {module.doc}", "", "| call | returns | |", "|---|---|---|", *rows, ""]


def _class_table(cls: ClassDoc) -> list[str]:
    rows = [f"| `{fn.call(cls.name.lower(), ':')}` | {_returns(fn)} | {_cell(fn.doc)} |" for fn in cls.methods]
    rows += [f"| `.{p.name}` | `{_cell(p.type)}`{' (optional)' if p.optional else ''} | {_cell(doc)} |"
             for p, doc in cls.fields]
    if not rows:
        return [f"**{cls.name}** — {cls.doc}", ""]
    return [f"**{cls.name}** — {cls.doc}", "", "| | type | |", "|---|---|---|", *rows, ""]


def _kinds_table(api: Api) -> list[str]:
    def listed(kind: str) -> str:
        return " ".join(f"`{m.name}`" for m in api.modules_of(kind) if not m.always)

    return ["| kind | modules it may list |", "|---|---|",
            f"| `workflow.lua` | {listed('workflow.lua')} |",
            f"| `function.lua` | {listed('function.lua')} (all of them when it lists none) |",
            "| `library.lua` | any of the above; the importing entry must list them too |",
            f"| `*_test.lua` | {listed('test')} (and the built-in `json`, `errors`) |", ""]


def _globals_table(api: Api) -> list[str]:
    g = api.globals
    rows = [f"| globals | {' '.join(f'`{n}`' for n in [*g['functions'], *g['values']])} |"]
    rows += [f"| `{lib}` | {' '.join(f'`{n}`' for n in names)} |" for lib, names in g["libraries"].items()]
    rows += [f"| only in `{kind}` | {' '.join(f'`{n}`' for n in names)} |" for kind, names in g["only"].items()]
    return ["| | what the sandbox keeps |", "|---|---|", *rows, ""]


def docs_region(api: Api, names: list[str]) -> str:
    """The generated text of one region: ``kinds``, ``globals``, module names and class names."""
    modules = {m.name: m for m in api.modules}
    classes = {c.name: c for c in api.classes}
    lines: list[str] = []
    for name in names:
        if name == "kinds":
            lines += _kinds_table(api)
        elif name == "globals":
            lines += _globals_table(api)
        elif name in modules:
            lines += _module_table(modules[name])
        elif name in classes:
            lines += _class_table(classes[name])
        else:
            raise FlowError(f"docs/lua-api.md: no module or class `{name}` in the API description",
                            hint="name modules, classes, `kinds` or `globals` in <!-- generated: ... -->")
    return "\n".join(lines[:-1]) + "\n" if lines else ""


def render_docs(text: str, api: Api | None = None) -> str:
    """``text`` (docs/lua-api.md) with every generated region rewritten from the description."""
    api = api or load_api()
    return _REGION.sub(lambda m: m[1] + docs_region(api, m["names"].split()) + m[3], text)


def main(root: Path) -> None:
    """Regenerate the shipped stubs and docs/lua-api.md's regions under the repository ``root``."""
    folder = root / "runner" / "project" / "stubs"
    folder.mkdir(exist_ok=True)
    files = stub_files()
    for old in folder.glob("*.lua"):
        if old.name not in files:
            old.unlink()
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    docs = root / "docs" / "lua-api.md"
    docs.write_text(render_docs(docs.read_text(encoding="utf-8")), encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd())

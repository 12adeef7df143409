"""The one description of the Lua API (``lua_api.yaml`` beside this file), parsed.

Every module a ``workflow.lua`` / ``function.lua`` entry (and a ``*_test.lua`` file) can reach: its
functions with typed arguments and returns, its fields, flowctl's object types, and the globals the
sandbox keeps. The LuaLS stubs and docs/lua-api.md's API tables are generated from it
(runner/project/stubs.py); tests check it against the real sandboxes both ways.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from registry.errors import FlowError

__all__ = ["Api", "ClassDoc", "Function", "ModuleDoc", "Param", "load_api", "parse_api", "split_top"]

_SIG = re.compile(r"^(?P<name>[A-Za-z_][\w.]*)\((?P<params>.*)\)(?:\s*->\s*(?P<returns>.+))?$")
_OPEN, _CLOSE = "({<[", ")}>]"


def split_top(text: str, sep: str = ",") -> list[str]:
    """``text`` split at ``sep`` outside brackets, each part stripped (``fun(a, b): c, d`` -> 2 parts)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    rest = text[start:].strip()
    return [*parts, rest] if rest else parts


@dataclass(frozen=True)
class Param:
    """One argument, field or result: ``name: type`` (``name?`` optional, ``...`` varargs)."""

    name: str
    type: str
    optional: bool = False

    @classmethod
    def parse(cls, text: str, where: str) -> Param:
        name, sep, type_ = text.partition(":")
        if not sep or not name.strip() or not type_.strip():
            raise FlowError(f"{where}: `{text}` is not `name: type`", hint="write arguments as `name: type`")
        name = name.strip()
        return cls(name.rstrip("?"), type_.strip(), name.endswith("?"))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "optional": self.optional}


@dataclass(frozen=True)
class Function:
    """A module function (``funcs.call``) or a method (``Duration:seconds``)."""

    name: str
    params: tuple[Param, ...]
    returns: tuple[Param, ...]
    doc: str
    errors: str = ""
    only: str = ""
    overloads: tuple[str, ...] = ()

    @classmethod
    def parse(cls, raw: dict[str, Any], where: str) -> Function:
        sig = str(raw.get("sig", ""))
        match = _SIG.match(sig)
        if not match:
            raise FlowError(f"{where}: `{sig}` is not a signature", hint="write `name(arg: type) -> result: type`")
        at = f"{where}.{match['name']}"
        return cls(name=match["name"], params=tuple(Param.parse(p, at) for p in split_top(match["params"])),
                   returns=tuple(Param.parse(r, at) for r in split_top(match["returns"] or "")),
                   doc=str(raw.get("doc", "")), errors=str(raw.get("errors", "")), only=str(raw.get("only", "")),
                   overloads=tuple(raw.get("overloads", ())))

    def call(self, owner: str, sep: str = ".") -> str:
        """``funcs.call(id, ...)``: how it is called, for docs."""
        args = ", ".join(p.name + ("?" if p.optional else "") for p in self.params)
        return f"{owner}{sep}{self.name}({args})"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "params": [p.to_dict() for p in self.params],
                "returns": [r.to_dict() for r in self.returns], "doc": self.doc, "errors": self.errors,
                "only": self.only}


@dataclass(frozen=True)
class ModuleDoc:
    """A module user code lists under ``modules:`` (or ``log``, always there; ``test`` in test files)."""

    name: str
    kinds: tuple[str, ...]
    doc: str
    functions: tuple[Function, ...]
    fields: tuple[tuple[Param, str], ...] = ()
    always: bool = False

    def names(self) -> set[str]:
        """Every dotted name the module table holds: functions, fields, and the keys of fields typed ``{k: T}``."""
        names = {f.name for f in self.functions} | {p.name for p, _ in self.fields}
        for p, _ in self.fields:
            if p.type.startswith("{"):
                names |= {f"{p.name}.{Param.parse(part, self.name).name}" for part in split_top(p.type[1:-1])}
        return names


@dataclass(frozen=True)
class ClassDoc:
    """One of flowctl's object types (``runtime``: its type name in the sandbox) or a table shape."""

    name: str
    section: str
    doc: str
    runtime: str = ""
    methods: tuple[Function, ...] = ()
    fields: tuple[tuple[Param, str], ...] = ()
    operators: tuple[str, ...] = ()


@dataclass(frozen=True)
class Api:
    """The whole description."""

    aliases: dict[str, tuple[str, str]]
    modules: tuple[ModuleDoc, ...]
    classes: tuple[ClassDoc, ...]
    globals: dict[str, Any] = field(default_factory=dict)

    def module(self, name: str) -> ModuleDoc:
        return next(m for m in self.modules if m.name == name)

    def modules_of(self, kind: str) -> list[ModuleDoc]:
        return [m for m in self.modules if kind in m.kinds]


def _fields(raw: list[dict[str, Any]], where: str) -> tuple[tuple[Param, str], ...]:
    return tuple((Param.parse(str(f["sig"]), where), str(f.get("doc", ""))) for f in raw)


def parse_api(data: dict[str, Any]) -> Api:
    """The description from its YAML data."""
    modules = tuple(ModuleDoc(name=m["name"], kinds=tuple(m["kinds"]), doc=m.get("doc", ""),
                              functions=tuple(Function.parse(f, m["name"]) for f in m.get("functions", [])),
                              fields=_fields(m.get("fields", []), m["name"]), always=bool(m.get("always")))
                    for m in data["modules"])
    classes = tuple(ClassDoc(name=c["name"], section=c["section"], doc=c.get("doc", ""), runtime=c.get("runtime", ""),
                             methods=tuple(Function.parse(f, c["name"]) for f in c.get("methods", [])),
                             fields=_fields(c.get("fields", []), c["name"]), operators=tuple(c.get("operators", ())))
                    for c in data["classes"])
    aliases = {name: (a["type"], a.get("doc", "")) for name, a in data.get("aliases", {}).items()}
    return Api(aliases=aliases, modules=modules, classes=classes, globals=data.get("globals", {}))


@functools.cache
def load_api() -> Api:
    """The shipped description (``runner/project/lua_api.yaml``)."""
    text = resources.files("runner.project").joinpath("lua_api.yaml").read_text(encoding="utf-8")
    return parse_api(yaml.safe_load(text))

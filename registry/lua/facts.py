"""What the parser learns about one Lua chunk: the facts the lint needs, independent of any entry.

Facts depend only on the source text, so they are cached on disk by the source's
hash (``registry.lua.cache``) and turned into diagnostics per entry by
``registry.lua.check``. They round-trip through JSON (plain lists, no pickles).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["USES", "CallTarget", "ChunkFacts", "ExportInfo", "FieldUse", "GlobalUse", "NameUse", "SyntaxProblem"]


#: How a read value is used, so the lint follows the value, not the name: ``read`` (nothing else
#: known), ``guarded`` (an operand of ``and``/``or``/``==``/``~=``, an argument of ``type``, in the
#: condition of an ``if``, or inside the ``if``/``and`` that tested it), ``captured`` (the value of a
#: ``local``), ``alias`` (a local holding it, read), ``call`` and ``index`` (unguarded: fails when nil).
USES = ("read", "guarded", "captured", "alias", "call", "index")


@dataclass(frozen=True, slots=True)
class SyntaxProblem:
    """Why the chunk does not compile; ``lua_line`` is the line real Lua would name."""

    message: str
    line: int
    col: int
    lua_line: int


@dataclass(frozen=True, slots=True)
class GlobalUse:
    """A global variable read (``write=False``) or assigned (``write=True``).

    ``how`` the value read is used (see :data:`USES`).
    """

    name: str
    line: int
    col: int
    write: bool = False
    how: str = "read"


@dataclass(frozen=True, slots=True)
class FieldUse:
    """``base.field`` where ``base`` is a global (or a module / a local bound to one), e.g. ``os.time``.

    ``how`` the value is used (see :data:`USES`); ``args``: how many arguments a call passes (-1: not a call).
    """

    base: str
    field: str
    line: int
    col: int
    how: str = "read"
    args: int = -1


@dataclass(frozen=True, slots=True)
class NameUse:
    """A literal name passed to ``require`` (``name`` None when computed) or a ``load`` mode."""

    name: str | None
    line: int
    col: int


@dataclass(frozen=True, slots=True)
class CallTarget:
    """A literal entry ID passed to an API that names an entry.

    ``api`` is how the call was written (``funcs.call``, ``executor:call``, ``process.spawn``…);
    ``role`` is ``target`` (the activity/workflow) or ``worker`` (process.* host argument).
    """

    api: str
    target: str
    line: int
    col: int
    role: str = "target"


@dataclass(frozen=True, slots=True)
class MarkUse:
    """``json.object(x)`` / ``json.array(x)`` with a literal ``x`` its mark cannot apply to.

    ``what``: ``string``, ``number``, ``boolean`` or ``function`` (fails at run time), or a table
    constructor that decides the form itself: ``list`` (items 1..n only) or ``named`` (string keys only).
    """

    api: str
    what: str
    line: int
    col: int


@dataclass(frozen=True, slots=True)
class ExportInfo:
    """What the chunk returns, as far as it can be seen statically.

    ``kind``: ``table`` (``names`` are its string keys; ``open`` when other keys may exist),
    ``value`` (a non-table such as a function or a string: ``what`` says which),
    ``none`` (no top-level return), or ``unknown``.
    """

    kind: str
    names: tuple[str, ...] = ()
    open: bool = False
    what: str = ""
    line: int = 0
    col: int = 0


@dataclass(slots=True)
class ChunkFacts:
    """Everything the lint needs to know about one source."""

    error: SyntaxProblem | None = None
    globals: list[GlobalUse] = field(default_factory=list)
    fields: list[FieldUse] = field(default_factory=list)
    requires: list[NameUse] = field(default_factory=list)
    load_modes: list[NameUse] = field(default_factory=list)
    calls: list[CallTarget] = field(default_factory=list)
    marks: list[MarkUse] = field(default_factory=list)
    exports: ExportInfo = field(default_factory=lambda: ExportInfo("unknown"))
    #: every name declared local somewhere (to explain "used before its local declaration")
    local_names: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able form (lists of plain values), for the on-disk cache."""
        err = self.error
        ex = self.exports
        return {
            "error": None if err is None else [err.message, err.line, err.col, err.lua_line],
            "globals": [[g.name, g.line, g.col, int(g.write), g.how] for g in self.globals],
            "fields": [[f.base, f.field, f.line, f.col, f.how, f.args] for f in self.fields],
            "requires": [[r.name, r.line, r.col] for r in self.requires],
            "load_modes": [[r.name, r.line, r.col] for r in self.load_modes],
            "calls": [[c.api, c.target, c.line, c.col, c.role] for c in self.calls],
            "marks": [[m.api, m.what, m.line, m.col] for m in self.marks],
            "exports": [ex.kind, list(ex.names), ex.open, ex.what, ex.line, ex.col],
            "local_names": self.local_names,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChunkFacts:
        """The inverse of :meth:`to_json`; raises KeyError/TypeError/ValueError on a malformed record."""
        err = data["error"]
        kind, names, is_open, what, line, col = data["exports"]
        return cls(
            error=None if err is None else SyntaxProblem(str(err[0]), int(err[1]), int(err[2]), int(err[3])),
            globals=[GlobalUse(str(n), int(ln), int(c), bool(w), str(h)) for n, ln, c, w, h in data["globals"]],
            fields=[FieldUse(str(b), str(f), int(ln), int(c), str(h), int(a))
                    for b, f, ln, c, h, a in data["fields"]],
            requires=[NameUse(n, int(ln), int(c)) for n, ln, c in data["requires"]],
            load_modes=[NameUse(n, int(ln), int(c)) for n, ln, c in data["load_modes"]],
            calls=[CallTarget(str(a), str(t), int(ln), int(c), str(r)) for a, t, ln, c, r in data["calls"]],
            marks=[MarkUse(str(a), str(w), int(ln), int(c)) for a, w, ln, c in data["marks"]],
            exports=ExportInfo(str(kind), tuple(str(n) for n in names), bool(is_open), str(what), int(line),
                               int(col)),
            local_names=[str(n) for n in data["local_names"]],
        )

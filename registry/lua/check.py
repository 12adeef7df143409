"""Stages 4 and 5 of validation: every Lua source compiles, and the lint.

Stage 4 reports syntax errors in the ``.lua`` file at Lua's position. Stage 5 judges
the parser's facts against the entry that uses the source: ``require`` of unlisted
modules, globals that do not exist in the sandbox or break determinism, literal
entry IDs that name nothing or the wrong kind, and a ``method`` that is not exported.
Every diagnostic points into the ``.lua`` file; its JSON path is the entry's ``source``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from pathlib import Path

from registry.diagnostics import Diagnostic, Severity, display_path, json_path
from registry.loader import Entry, Project
from registry.lua.cache import AnalysisCache
from registry.lua.facts import ChunkFacts, SyntaxProblem
from registry.lua.library_names import bare_names, importer_namespaces
from registry.lua.modules import (
    ACTIVITY_KINDS,
    ACTIVITY_MODULES,
    ALL_MODULES,
    BASE_GLOBALS,
    FORBIDDEN_FIELDS,
    FORBIDDEN_GLOBALS,
    OS_SHIMS,
    WORKFLOW_KINDS,
    WORKFLOW_MODULES,
)
from registry.suggest import EntryNames

__all__ = ["LUA_KINDS", "check_lua"]

LUA_KINDS = ("workflow.lua", "function.lua", "library.lua")
#: Always defined: the sandbox's ``log`` (like print) and the chunk's own environment.
ALWAYS_GLOBALS = frozenset({"log", "_ENV"})
#: Readable but non-deterministic-looking in workflow code (they are shimmed; FC404 warns).
WORKFLOW_SHIMMED = {
    ("os", "time"): ("os.time() returns the workflow's clock here, but reads like wall-clock time",
                     "use time.now() (list `time` in modules:) so the workflow's clock is explicit"),
    ("os", "clock"): ("os.clock() returns workflow time here, not CPU time",
                      "use time.now() and Time:sub() to measure durations in workflow time"),
    ("os", "date"): ("os.date() formats the workflow's clock here, but reads like wall-clock time",
                     "use time.now():format_rfc3339() (list `time` in modules:)"),
    ("math", "random"): ("math.random is seeded from the workflow's deterministic random, but reads as "
                         "non-deterministic", "the seeded random is replay-safe; for IDs and tokens prefer "
                         "uuid.v4() or crypto.random_bytes() (list them in modules:)"),
}
#: What kind of entry a literal ID must name, by the role of the argument.
UNAVAILABLE = "is not available in the flowctl sandbox"
#: Uses of a missing global or field that fail at run time (FC403); a plain read only gives nil (FC410).
FAILING = {"call": "calling it fails at run time", "index": "indexing it fails at run time"}
GUARD_HINT = "guard it (`x and x.y`, `x or fallback`, `if x then … end`) if the code also runs elsewhere; "
ACTIVITY_APIS = frozenset({"funcs.call", "funcs.async", "executor:call", "executor:async"})

_IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CLOSE_RE = re.compile(r"'end' expected \(to close '(\w+)' at line (\d+)\)")
_SYNTAX_HINTS = (
    ("cannot use '...'", "add `...` to the enclosing function's parameters, or pass the values explicitly"),
    ("break outside loop", "`break` only works inside while/for/repeat; leave with `return` or `goto`"),
    ("attempt to assign to const", "remove <const>/<close> from the declaration, or assign to a new local"),
    ("no visible label", "define the label (::name::) in this function, in the same or an enclosing block"),
    ("jumps into the scope of local", "declare the local after the label, or wrap it in do ... end"),
    ("already defined", "rename one of the labels; a label name is visible in its whole block"),
    ("unfinished string", "close the string with the same quote on the same line, or use a [[long string]]"),
    ("unfinished long", "close the long string/comment with the matching ]] (same number of '=')"),
    ("escape", "fix the escape sequence (\\n, \\t, \\\\, \\ddd, \\xXX, \\u{XXX}), or use a [[long string]]"),
    ("malformed number", "write the number as Lua does: 42, 3.14, 1e-3, 0xff"),
    ("unknown attribute", "the only attributes are <const> and <close>"),
    ("too many", "split the code into smaller functions"),
    ("nested levels", "split the expression or the nested blocks into smaller functions"),
)


def check_lua(project: Project, *, cache_dir: Path | None, names: EntryNames | None = None) -> list[Diagnostic]:
    """Stage 4 (syntax) and stage 5 (lint) for every Lua entry whose source could be read.

    ``names`` (the validation's own, so its indexes are built once) gives the "did you mean" hints.
    """
    cache = AnalysisCache(cache_dir)
    by_id = project.by_id()
    names = names if names is not None else EntryNames(project)
    problems: list[Diagnostic] = []
    importers = importer_namespaces(project)
    for entry in project.entries:
        if entry.kind not in LUA_KINDS or entry.source_text is None or entry.source_path is None:
            continue
        facts = cache.facts(entry.source_text)
        lint = _EntryLint(entry, facts, by_id, names)
        if facts.error is not None:
            problems.append(lint.syntax(facts.error))
        else:
            problems.extend(lint.run())
            problems.extend(bare_names(lint, importers.get(entry.id, frozenset())))
    return problems


def syntax_hint(message: str) -> str:
    """How to fix a Lua syntax error, from its message."""
    closing = _CLOSE_RE.search(message)
    if closing:
        return f"add the `end` that closes the '{closing.group(1)}' opened at line {closing.group(2)}"
    for needle, hint in _SYNTAX_HINTS:
        if needle in message:
            return hint
    return "fix the Lua syntax at this position (the file must compile as Lua 5.4)"


class _EntryLint:
    """The lint of one entry's source: facts plus what the entry allows."""

    def __init__(self, entry: Entry, facts: ChunkFacts, by_id: dict[str, Entry], entry_names: EntryNames) -> None:
        self.entry = entry
        self.facts = facts
        self.by_id = by_id
        self.entry_names = entry_names
        assert entry.source_path is not None
        self.file = display_path(entry.source_path)
        self.where = json_path((*entry.path, "source"))
        data = entry.data
        listed = data.get("modules")
        names = {m for m in listed if isinstance(m, str)} if isinstance(listed, list) else set()
        # The runner gives an activity that lists no modules all of them (runner.shims.activity_modules).
        self.modules = set(ACTIVITY_MODULES) if entry.kind == "function.lua" and listed is None else names
        imports = data.get("imports")
        self.aliases = {a for a in imports if isinstance(a, str)} if isinstance(imports, dict) else set()
        self.kind_modules = {"workflow.lua": WORKFLOW_MODULES, "function.lua": ACTIVITY_MODULES}.get(
            entry.kind, ALL_MODULES)

    def diag(self, line: int, col: int, code: str, message: str, hint: str,
             severity: Severity = Severity.ERROR) -> Diagnostic:
        return Diagnostic(file=self.file, line=line, col=col, code=code, message=message, hint=hint,
                          path=self.where, severity=severity)

    def syntax(self, error: SyntaxProblem) -> Diagnostic:
        return self.diag(error.line, error.col, "FC301", f"Lua syntax error: {error.message}",
                         syntax_hint(error.message))

    def run(self) -> Iterator[Diagnostic]:
        yield from self.requires()
        yield from self.globals()
        yield from self.fields()
        yield from self.load_modes()
        yield from self.call_targets()
        yield from self.marks()
        yield from self.exports()

    def modules_hint(self, name: str) -> str:
        entry = self.entry
        if name in self.kind_modules:
            return f"add `{name}` to `modules:` of {entry.id} ({self.yaml_position('modules')})"
        if name in ALL_MODULES:
            return f"`{name}` is not available in {entry.kind} entries (available: " \
                   f"{', '.join(sorted(self.kind_modules))})"
        return f"list a flowctl module in `modules:` ({', '.join(sorted(self.kind_modules))}) or a library " \
               f"in `imports:` ({name}: namespace:library_entry)"

    def yaml_position(self, field: str) -> str:
        doc = self.entry.document
        pos = doc.key_position((*self.entry.path, field))
        return f"{doc.display}:{pos.line}"

    def requires(self) -> Iterator[Diagnostic]:
        for use in self.facts.requires:
            name = use.name
            if name is None or name in self.modules or name in self.aliases:
                continue
            yield self.diag(use.line, use.col, "FC401",
                            f"require({name!r}): {name!r} is neither in `modules` nor an import alias of "
                            f"{self.entry.id}", self.modules_hint(name))

    def globals(self) -> Iterator[Diagnostic]:
        uses = self.facts.globals
        assigned = {g.name for g in uses if g.write}
        known = BASE_GLOBALS | ALWAYS_GLOBALS | self.modules | assigned
        declared_later = set(self.facts.local_names)
        for use in uses:
            name = use.name
            if use.write:
                continue
            if name in FORBIDDEN_GLOBALS:
                yield from self.missing(use.line, use.col, name, use.how, FORBIDDEN_GLOBALS[name])
            elif name in known:
                continue
            elif name in ALL_MODULES:
                yield self.diag(use.line, use.col, "FC402",
                                f"module `{name}` is used as a global but is not listed in `modules` of "
                                f"{self.entry.id}", self.modules_hint(name))
            elif name in declared_later:
                yield self.diag(use.line, use.col, "FC405",
                                f"undefined global `{name}`: a local `{name}` is declared, but not before "
                                "this use", f"move `local {name}` (or `local function {name}`) above the "
                                "function that uses it; a local is only visible after its declaration")
            else:
                close = difflib.get_close_matches(name, sorted(known | declared_later), n=1)
                hint = f"did you mean `{close[0]}`? " if close else ""
                yield self.diag(use.line, use.col, "FC405", f"undefined global `{name}`",
                                f"{hint}declare it with `local` before use, or list the module in `modules:`")

    def fields(self) -> Iterator[Diagnostic]:
        workflow = self.entry.kind == "workflow.lua"
        for use in self.facts.fields:
            pair = (use.base, use.field)
            dotted = f"{use.base}.{use.field}"
            if pair in FORBIDDEN_FIELDS:
                yield from self.missing(use.line, use.col, dotted, use.how, FORBIDDEN_FIELDS[pair])
            elif use.base == "os" and use.field not in OS_SHIMS:
                yield from self.missing(use.line, use.col, dotted, use.how,
                                        "the sandbox keeps only os.time, os.clock and os.date; do system work "
                                        "in a function.python activity")
            elif pair == ("math", "randomseed") and use.how == "call" and use.args == 0:
                yield self.diag(use.line, use.col, "FC411",
                                "math.randomseed() without a seed is not allowed in the sandbox (Lua would seed "
                                "it from the clock and the address of a table, which a replay does not repeat)",
                                "pass an explicit seed, e.g. math.randomseed(42), or leave the run's own seed "
                                "(math.random is already seeded deterministically)")
            elif workflow and pair in WORKFLOW_SHIMMED:
                message, hint = WORKFLOW_SHIMMED[pair]
                yield self.diag(use.line, use.col, "FC404", message, hint, Severity.WARNING)

    def missing(self, line: int, col: int, name: str, how: str, hint: str) -> Iterator[Diagnostic]:
        """A global or field the sandbox lacks: an error where it fails, a warning where it is only nil."""
        if how in FAILING:
            yield self.diag(line, col, "FC403", f"`{name}` {UNAVAILABLE}: {FAILING[how]}", hint)
        elif how == "read":
            yield self.diag(line, col, "FC410", f"`{name}` is nil in the flowctl sandbox", GUARD_HINT + hint,
                            Severity.WARNING)

    def load_modes(self) -> Iterator[Diagnostic]:
        for use in self.facts.load_modes:
            if use.name is not None and "b" in use.name:
                yield self.diag(use.line, use.col, "FC406",
                                f"load() with mode {use.name!r} asks for binary chunks",
                                "the sandbox only loads text chunks: pass \"t\" or leave the mode out")

    def call_targets(self) -> Iterator[Diagnostic]:
        for call in self.facts.calls:
            if call.role == "worker":
                wanted: tuple[str, ...] = ("temporal.worker",)
            elif call.api in ACTIVITY_APIS:
                wanted = ACTIVITY_KINDS
            else:
                wanted = WORKFLOW_KINDS
            target_id = self.entry.ref(call.target)
            target = self.by_id.get(target_id)
            what = " or ".join(wanted)
            shown = f"{call.api}({call.target!r})"
            if target is None:
                close = self.entry_names.of(wanted).closest(target_id)
                hint = f"did you mean {close!r}? " if close else ""
                yield self.diag(call.line, call.col, "FC407", f"{shown}: no entry {target_id!r}",
                                f"{hint}define a {what} entry with that ID, or fix the ID "
                                "(a bare name means this entry's namespace)")
            elif target.kind not in wanted:
                yield self.diag(call.line, call.col, "FC408",
                                f"{shown}: {target_id} is a {target.kind} entry, not {what}",
                                f"{call.api} needs a {what} entry here")

    def marks(self) -> Iterator[Diagnostic]:
        """json.object()/json.array() given a literal their mark cannot apply to (docs/lua-api.md, Empty tables)."""
        for use in self.facts.marks:
            other = "json.array" if use.api == "json.object" else "json.object"
            if use.what == "list":
                yield self.diag(use.line, use.col, "FC141", "json.object({...}) with list items only is sent as "
                                "an array: the mark only decides what an empty table is",
                                "give the values string keys ({a = 1}) for an object, or drop json.object for "
                                "a list", Severity.WARNING)
            elif use.what == "named":
                yield self.diag(use.line, use.col, "FC142", "json.array({...}) with named keys only is sent as "
                                "an object: the mark only decides what an empty table is",
                                "list the values ({1, 2}) for an array, or drop json.array for an object",
                                Severity.WARNING)
            else:
                yield self.diag(use.line, use.col, "FC140", f"{use.api}() marks a table, not a {use.what}: "
                                "the call fails at run time",
                                f"pass a table ({use.api}({{...}})) or nothing ({use.api}() is a new empty "
                                f"{use.api[5:]}); {other} marks the other form")

    def exports(self) -> Iterator[Diagnostic]:
        entry = self.entry
        if entry.kind not in ("workflow.lua", "function.lua"):
            return
        method = entry.data.get("method", "main")
        if not isinstance(method, str) or not _IDENTIFIER_RE.fullmatch(method):
            return  # the schema stage reports a malformed method
        info = self.facts.exports
        not_exported = f"method `{method}` is not exported"
        fix = f"end the file with `return {{ {method} = {method} }}`"
        if info.kind == "none":
            text = entry.source_text or ""
            last = text.rstrip("\n").count("\n") + 1
            yield self.diag(last, 1, "FC409", f"{not_exported}: the chunk returns nothing", fix)
        elif info.kind == "value":
            yield self.diag(info.line, info.col, "FC409",
                            f"{not_exported}: the chunk returns {info.what}, not a table", fix)
        elif info.kind == "table" and not info.open and method not in info.names:
            others = ", ".join(f"`{n}`" for n in info.names) or "nothing"
            close = difflib.get_close_matches(method, list(info.names), n=1)
            hint = f"did you mean `{close[0]}`? set `method: {close[0]}` or " if close else ""
            yield self.diag(info.line, info.col, "FC409",
                            f"{not_exported}: the returned table has {others}",
                            f"{hint}add `{method} = {method}` to the returned table")

"""A recursive-descent parser for Lua 5.4, following lparser.c, that records what the lint needs.

It accepts exactly what Lua 5.4 compiles (goto/labels and their scope rules,
``<const>``/``<close>``, varargs only in vararg functions, ``break`` only in loops,
the 200-locals and 255-upvalues limits…) and fails with Lua's own messages
(``'end' expected (to close 'function' at line 3) near <eof>``). Like Lua it is a
single pass with proper scoping, so a ``local function`` declared after the function
that calls it is a *global* at that call — the slip the lint reports.

Not modelled: register allocation (Lua refuses an expression needing more than 255
registers, e.g. a call with ~250 arguments) and Lua's exact C-stack depth, which
depends on the caller; we stop at 200 nested levels like ``LUAI_MAXCCALLS``.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

from registry.lua.facts import (
    CallTarget,
    ChunkFacts,
    ExportInfo,
    FieldUse,
    GlobalUse,
    MarkUse,
    NameUse,
    SyntaxProblem,
)
from registry.lua.lexer import LuaSyntaxError, Token, normalize_newlines, tokenize
from registry.lua.modules import FORBIDDEN_FIELDS, FORBIDDEN_GLOBALS, OS_SHIMS

__all__ = ["PARSER_VERSION", "analyze", "parse_facts"]

#: Bump when the recorded facts change, so cached analyses are recomputed.
PARSER_VERSION = "4"

MAX_LEVELS = 200  # LUAI_MAXCCALLS
MAX_VARS = 200  # MAXVARS: active locals per function
MAX_UPVALUES = 255  # MAXUPVAL

#: left and right priority of each binary operator (lparser.c ``priority``)
BINARY = {
    "+": (10, 10), "-": (10, 10), "*": (11, 11), "%": (11, 11), "^": (14, 13), "/": (11, 11),
    "//": (11, 11), "&": (6, 6), "|": (4, 4), "~": (5, 5), "<<": (7, 7), ">>": (7, 7), "..": (9, 8),
    "==": (3, 3), "<": (3, 3), "<=": (3, 3), "~=": (3, 3), ">": (3, 3), ">=": (3, 3),
    "and": (2, 2), "or": (1, 1),
}
UNARY = frozenset({"not", "-", "~", "#"})
UNARY_PRIORITY = 12
BLOCK_FOLLOW = frozenset({"else", "elseif", "end", "<eof>"})
LITERAL_KINDS = {"number": "a number", "string": "a string", "nil": "nil", "true": "a boolean",
                 "false": "a boolean", "function": "a function"}

#: Globals whose fields the lint judges (``os.time``, ``math.random``, ``string.dump``…).
FIELD_BASES = frozenset({"os", "math", "string"})
#: operators whose operands may be nil without failing (the value is tested, not used)
TESTS = frozenset({"and", "or", "==", "~="})
#: uses a guard does not change (an unguarded call or index fails; see facts.USES)
SETTLED = frozenset({"guarded", "captured", "call", "index"})
#: module function -> the API name recorded for a literal first argument
#: Literals json.object()/json.array() cannot mark (the kind the parser notes -> what the lint says).
LITERAL_KINDS = {"number": "number", "true": "boolean", "false": "boolean", "function": "function"}
TARGET_FUNCTIONS = {
    ("funcs", "call"): "funcs.call", ("funcs", "async"): "funcs.async", ("workflow", "exec"): "workflow.exec",
    ("process", "spawn"): "process.spawn", ("process", "spawn_monitored"): "process.spawn_monitored",
    ("process", "exec"): "process.exec",
}
EXECUTOR_METHODS = {("funcs", "call"): "executor:call", ("funcs", "async"): "executor:async",
                    ("process", "spawn"): "process:spawn",
                    ("process", "spawn_monitored"): "process:spawn_monitored",
                    ("process", "exec"): "process:exec"}
#: calls whose result is an executor of the module (funcs.new(), process.with_options(...))
EXECUTOR_FACTORIES = {("funcs", "new"), ("funcs", "with_options"), ("process", "with_options"),
                      ("process", "with_context"), ("process", "with_name"), ("process", "with_message")}
BUILDER_METHODS = frozenset({"with_options", "with_name", "with_message", "with_context"})

# Attribute kinds of a local (lparser.c VDKREG / RDKCONST / RDKTOCLOSE).
REG, CONST, CLOSE = 0, 1, 2


class _Var:
    __slots__ = ("attr", "name", "sym", "table")

    def __init__(self, name: str, attr: int = REG) -> None:
        self.name = name
        self.attr = attr
        #: what the variable holds, when known: ("g", module) / ("exec", module) / ("fn",)
        self.sym: tuple[str, ...] | None = None
        #: the table a table constructor put here (for ``return M``)
        self.table: _Table | None = None


class _Table:
    __slots__ = ("items", "names", "open")

    def __init__(self) -> None:
        self.names: list[str] = []
        self.open = False
        self.items = False  # a positional item (1..n)


class _Label:
    __slots__ = ("col", "line", "nactvar", "name")

    def __init__(self, name: str, line: int, col: int, nactvar: int) -> None:
        self.name = name
        self.line = line
        self.col = col
        self.nactvar = nactvar


class _Block:
    __slots__ = ("firstgoto", "firstlabel", "isloop", "nactvar", "previous")

    def __init__(self, previous: _Block | None, nactvar: int, firstlabel: int, firstgoto: int,
                 isloop: bool) -> None:
        self.previous = previous
        self.nactvar = nactvar
        self.firstlabel = firstlabel
        self.firstgoto = firstgoto
        self.isloop = isloop


class _Func:
    __slots__ = ("actvar", "bl", "firstgoto", "firstlabel", "is_vararg", "line", "parent", "upvals")

    def __init__(self, parent: _Func | None, line: int, firstlabel: int, firstgoto: int) -> None:
        self.parent = parent
        self.line = line
        self.is_vararg = False
        self.actvar: list[_Var] = []
        self.bl: _Block | None = None
        self.firstlabel = firstlabel
        self.firstgoto = firstgoto
        self.upvals: set[int] = set()


# Expression kinds: assignable ones first.
LOCAL, GLOBAL, INDEX, CALL, VARARG, OTHER = range(6)


class _Exp:
    """An expression as far as the lint cares (lparser.c's ``expdesc``, minus code generation)."""

    __slots__ = ("base", "col", "fact", "k", "key", "line", "lit", "sym", "table", "var")

    def __init__(self, k: int, line: int, col: int) -> None:
        self.k = k
        self.line = line
        self.col = col
        self.var: _Var | None = None  # LOCAL
        self.sym: tuple[str, ...] | None = None
        self.lit: str | None = None  # the value of a literal string; else the kind of a literal
        self.table: _Table | None = None  # a table constructor
        self.base: _Exp | None = None  # INDEX: the indexed expression
        self.key: str | None = None  # INDEX: a constant string key
        self.fact: tuple[str, int] | None = None  # the GlobalUse ("g", i) / FieldUse ("f", i) it recorded


class _Parser:
    def __init__(self, tokens: list[Token], lex_error: LuaSyntaxError | None) -> None:
        self.tokens = tokens
        self.lex_error = lex_error
        self.pos = 0
        self.tok = tokens[0]
        self.level = 0
        self.labels: list[_Label] = []
        self.gotos: list[_Label] = []
        self.fs: _Func = _Func(None, 0, 0, 0)
        self.facts = ChunkFacts()
        self.main_returns: list[ExportInfo] = []
        self.nested_return = False
        self.local_names: set[str] = set()
        #: every name (and ``base.field``) read so far, in order: what a condition tests
        self.tested: list[str] = []
        #: names tested by the enclosing ``if`` conditions and ``and`` left operands
        self.guards: list[str] = []

    # -- tokens --------------------------------------------------------------------------------

    def next(self) -> None:
        self.pos += 1
        self.tok = self.tokens[self.pos]
        if self.tok.kind == "<lexerror>":
            assert self.lex_error is not None
            raise self.lex_error

    def lookahead(self) -> Token:
        following = self.tokens[self.pos + 1]
        if following.kind == "<lexerror>":
            assert self.lex_error is not None
            raise self.lex_error
        return following

    def error(self, message: str, *, near: bool = True, at: tuple[int, int] | None = None) -> LuaSyntaxError:
        tok = self.tok
        text = f"{message} {tok.near()}" if near else message
        line, col = at or (tok.line, tok.col)
        return LuaSyntaxError(text, line, col, lua_line=tok.end_line or tok.line)

    @staticmethod
    def token_name(kind: str) -> str:
        if kind in ("<eof>", "<name>"):
            return kind
        return f"'{kind}'"

    def error_expected(self, kind: str) -> LuaSyntaxError:
        return self.error(f"{self.token_name(kind)} expected")

    def check(self, kind: str) -> None:
        if self.tok.kind != kind:
            raise self.error_expected("<name>" if kind == "name" else kind)

    def checknext(self, kind: str) -> None:
        self.check(kind)
        self.next()

    def testnext(self, kind: str) -> bool:
        if self.tok.kind == kind:
            self.next()
            return True
        return False

    def check_match(self, what: str, who: str, where: int) -> None:
        if self.tok.kind == what:
            self.next()
            return
        if where == (self.tok.end_line or self.tok.line):
            raise self.error_expected(what)
        raise self.error(f"'{what}' expected (to close '{who}' at line {where})")

    def str_checkname(self) -> Token:
        tok = self.tok
        self.check("name")
        self.next()
        return tok

    def enterlevel(self) -> None:
        self.level += 1
        if self.level >= MAX_LEVELS:
            message = f"chunk has too many nested levels (limit is {MAX_LEVELS}; Lua: C stack overflow)"
            raise self.error(message, near=False)

    # -- scopes --------------------------------------------------------------------------------

    def enterblock(self, isloop: bool) -> None:
        fs = self.fs
        fs.bl = _Block(fs.bl, len(fs.actvar), len(self.labels), len(self.gotos), isloop)

    def leaveblock(self) -> None:
        fs = self.fs
        bl = fs.bl
        assert bl is not None
        del fs.actvar[bl.nactvar:]
        if bl.isloop:  # resolve pending breaks
            self.createlabel("break", 0, 0, last=False)
        fs.bl = bl.previous
        del self.labels[bl.firstlabel:]
        if bl.previous is not None:
            for goto in self.gotos[bl.firstgoto:]:
                goto.nactvar = min(goto.nactvar, bl.nactvar)
        elif len(self.gotos) > bl.firstgoto:
            self.undefgoto(self.gotos[bl.firstgoto])

    def undefgoto(self, goto: _Label) -> None:
        if goto.name == "break":
            message = f"break outside loop at line {goto.line}"
        else:
            message = f"no visible label '{goto.name}' for <goto> at line {goto.line}"
        raise self.error(message, near=False, at=(goto.line, goto.col))

    def findlabel(self, name: str) -> _Label | None:
        for label in self.labels[self.fs.firstlabel:]:
            if label.name == name:
                return label
        return None

    def createlabel(self, name: str, line: int, col: int, *, last: bool) -> None:
        fs = self.fs
        assert fs.bl is not None
        label = _Label(name, line, col, fs.bl.nactvar if last else len(fs.actvar))
        self.labels.append(label)
        pending = self.gotos[fs.bl.firstgoto:]
        keep = []
        for goto in pending:
            if goto.name != name:
                keep.append(goto)
            elif goto.nactvar < label.nactvar:
                var = fs.actvar[goto.nactvar].name
                raise self.error(f"<goto {name}> at line {goto.line} jumps into the scope of local '{var}'",
                                 near=False, at=(goto.line, goto.col))
        self.gotos[fs.bl.firstgoto:] = keep

    def new_localvar(self, name: str, pending: list[_Var], attr: int = REG) -> _Var:
        fs = self.fs
        if len(fs.actvar) + len(pending) + 1 > MAX_VARS:
            self.errorlimit(MAX_VARS, "local variables")
        var = _Var(name, attr)
        pending.append(var)
        self.local_names.add(name)
        return var

    def errorlimit(self, limit: int, what: str) -> None:
        where = "main function" if self.fs.line == 0 else f"function at line {self.fs.line}"
        raise self.error(f"too many {what} (limit is {limit}) in {where}")

    def singlevar(self, tok: Token) -> _Exp:
        """Resolve a name: a local of this or an enclosing function, else a global (``_ENV.name``)."""
        name = tok.value
        e = _Exp(LOCAL, tok.line, tok.col)
        var = self.find_var(name)
        self.tested.append(name)
        if var is not None:
            e.var = var
            e.sym = var.sym
            e.table = var.table
            self.alias_use(e, name)
            return e
        env = self.find_var("_ENV")
        e.k = GLOBAL
        e.lit = name
        if env is None:  # a real global; with a local _ENV it is a field of that table
            e.sym = ("g", name)
            e.fact = ("g", len(self.facts.globals))
            how = "guarded" if name in self.guards else "read"
            self.facts.globals.append(GlobalUse(name, tok.line, tok.col, how=how))
        return e

    def alias_use(self, e: _Exp, name: str) -> None:
        """A local holding a global or field the sandbox lacks (``local r = math.randomseed``): its uses count."""
        sym = e.sym
        how = "guarded" if name in self.guards else "alias"
        if sym is not None and sym[0] == "g" and sym[1] in FORBIDDEN_GLOBALS:
            e.fact = ("g", len(self.facts.globals))
            self.facts.globals.append(GlobalUse(sym[1], e.line, e.col, how=how))
        elif sym is not None and sym[0] == "f" and _judged_field(sym[1], sym[2]):
            e.fact = ("f", len(self.facts.fields))
            self.facts.fields.append(FieldUse(sym[1], sym[2], e.line, e.col, how=how))

    def mark(self, e: _Exp, how: str, args: int = -1) -> None:
        """Say how the value ``e`` read is used (facts.USES), unless that is already settled."""
        if e.fact is None:
            return
        kind, i = e.fact
        if kind == "g":
            use = self.facts.globals[i]
            if use.how not in SETTLED:
                self.facts.globals[i] = replace(use, how=how)
        else:
            field = self.facts.fields[i]
            if field.how not in SETTLED:
                self.facts.fields[i] = replace(field, how=how, args=args)

    def find_var(self, name: str) -> _Var | None:
        fs: _Func | None = self.fs
        depth = 0
        while fs is not None:
            for var in reversed(fs.actvar):
                if var.name == name:
                    if depth:
                        self.mark_upvalue(var, depth)
                    return var
            fs = fs.parent
            depth += 1
        return None

    def mark_upvalue(self, var: _Var, depth: int) -> None:
        fs = self.fs
        for _ in range(depth):
            fs.upvals.add(id(var))
            if len(fs.upvals) > MAX_UPVALUES:
                where = f"function at line {fs.line}"
                raise self.error(f"too many upvalues (limit is {MAX_UPVALUES}) in {where}")
            assert fs.parent is not None
            fs = fs.parent

    # -- statements ----------------------------------------------------------------------------

    def mainfunc(self) -> None:
        self.fs = _Func(None, 0, 0, 0)
        self.fs.is_vararg = True
        self.enterblock(False)
        self.statlist()
        self.check("<eof>")
        self.leaveblock()

    def statlist(self) -> None:
        while self.tok.kind not in BLOCK_FOLLOW and self.tok.kind != "until":
            if self.tok.kind == "return":
                self.statement()
                return
            self.statement()

    def block(self) -> None:
        self.enterblock(False)
        self.statlist()
        self.leaveblock()

    def statement(self) -> None:
        tok = self.tok
        line = tok.line
        self.enterlevel()
        kind = tok.kind
        if kind == ";":
            self.next()
        elif kind == "if":
            self.ifstat(line)
        elif kind == "while":
            self.next()
            self.expr()
            self.enterblock(True)
            self.checknext("do")
            self.block()
            self.check_match("end", "while", line)
            self.leaveblock()
        elif kind == "do":
            self.next()
            self.block()
            self.check_match("end", "do", line)
        elif kind == "for":
            self.forstat(line)
        elif kind == "repeat":
            self.enterblock(True)
            self.enterblock(False)
            self.next()
            self.statlist()
            self.check_match("until", "repeat", line)
            self.expr()
            self.leaveblock()
            self.leaveblock()
        elif kind == "function":
            self.funcstat(line)
        elif kind == "local":
            self.next()
            if self.testnext("function"):
                self.localfunc()
            else:
                self.localstat()
        elif kind == "::":
            self.next()
            name = self.str_checkname()
            self.labelstat(name, line, tok.col)
        elif kind == "return":
            self.next()
            self.retstat(tok)
        elif kind == "break":
            self.next()
            self.gotos.append(_Label("break", line, tok.col, len(self.fs.actvar)))
        elif kind == "goto":
            self.next()
            name = self.str_checkname()
            if self.findlabel(name.value) is None:  # a backward jump is resolved at once
                self.gotos.append(_Label(name.value, name.line, tok.col, len(self.fs.actvar)))
        else:
            self.exprstat()
        self.level -= 1

    def ifstat(self, line: int) -> None:
        self.test_then_block()
        while self.tok.kind == "elseif":
            self.test_then_block()
        if self.testnext("else"):
            self.block()
        self.check_match("end", "if", line)

    def test_then_block(self) -> None:
        self.next()
        start = len(self.tested)
        self.mark(self.expr(), "guarded")
        self.checknext("then")
        depth = len(self.guards)
        self.guards.extend(self.tested[start:])  # `if io then io.write(…) end`
        self.block()
        del self.guards[depth:]

    def forstat(self, line: int) -> None:
        self.enterblock(True)
        self.next()
        first = self.str_checkname()
        pending: list[_Var] = []
        if self.tok.kind == "=":
            for _ in range(3):
                self.new_localvar("(for state)", pending)
            self.new_localvar(first.value, pending)
            self.next()
            self.expr()
            self.checknext(",")
            self.expr()
            if self.testnext(","):
                self.expr()
            self.forbody(pending, 3)
        elif self.tok.kind in (",", "in"):
            for _ in range(4):
                self.new_localvar("(for state)", pending)
            self.new_localvar(first.value, pending)
            while self.testnext(","):
                self.new_localvar(self.str_checkname().value, pending)
            self.checknext("in")
            self.explist()
            self.forbody(pending, 4)
        else:
            raise self.error("'=' or 'in' expected")
        self.check_match("end", "for", line)
        self.leaveblock()

    def forbody(self, pending: list[_Var], hidden: int) -> None:
        fs = self.fs
        fs.actvar.extend(pending[:hidden])  # the control variables
        self.checknext("do")
        self.enterblock(False)
        fs.actvar.extend(pending[hidden:])
        self.block()
        self.leaveblock()

    def funcstat(self, line: int) -> None:
        self.next()
        target = self.singlevar(self.str_checkname())
        is_method = False
        while self.tok.kind == ".":
            target = self.fieldsel(target)
        if self.tok.kind == ":":
            is_method = True
            target = self.fieldsel(target)
        self.body(is_method, line)
        self.check_readonly(target)
        self.assigned(target, None)

    def localfunc(self) -> None:
        name = self.str_checkname()
        pending: list[_Var] = []
        var = self.new_localvar(name.value, pending)
        var.sym = ("fn",)
        self.fs.actvar.append(var)
        self.body(False, self.tok.line)

    def localstat(self) -> None:
        pending: list[_Var] = []
        toclose = False
        while True:
            name = self.str_checkname()
            var = self.new_localvar(name.value, pending)
            if self.testnext("<"):
                attr = self.str_checkname().value
                self.checknext(">")
                if attr == "const":
                    var.attr = CONST
                elif attr == "close":
                    var.attr = CLOSE
                    if toclose:
                        raise self.error("multiple to-be-closed variables in local list", near=False)
                    toclose = True
                else:
                    raise self.error(f"unknown attribute '{attr}'", near=False)
            if not self.testnext(","):
                break
        values = self.explist() if self.testnext("=") else []
        for var, value in zip(pending, values, strict=False):
            self.mark(value, "captured")
            var.sym = ("fn",) if value.lit == "function" else value.sym
            var.table = value.table
        self.fs.actvar.extend(pending)

    def labelstat(self, name: Token, line: int, col: int) -> None:
        self.checknext("::")
        while self.tok.kind in (";", "::"):
            self.statement()
        existing = self.findlabel(name.value)
        if existing is not None:
            raise self.error(f"label '{name.value}' already defined on line {existing.line}", near=False,
                             at=(line, col))
        self.createlabel(name.value, line, col, last=self.tok.kind in BLOCK_FOLLOW)

    def retstat(self, tok: Token) -> None:
        fs = self.fs
        values: list[_Exp] = []
        if self.tok.kind not in BLOCK_FOLLOW and self.tok.kind not in ("until", ";"):
            values = self.explist()
        self.testnext(";")
        if fs.parent is None:
            assert fs.bl is not None
            if fs.bl.previous is None:
                self.main_returns.append(self.export_of(values, tok))
            else:
                self.nested_return = True

    def export_of(self, values: list[_Exp], tok: Token) -> ExportInfo:
        if not values:
            return ExportInfo("value", what="nothing", line=tok.line, col=tok.col)
        first = values[0]
        table = first.table
        if table is not None and first.k in (LOCAL, OTHER):
            return ExportInfo("table", tuple(table.names), table.open, line=first.line, col=first.col)
        if first.k == OTHER and (first.sym == ("str",) or first.lit in LITERAL_KINDS):
            what = "a string" if first.sym == ("str",) else LITERAL_KINDS[first.lit or ""]
            return ExportInfo("value", what=what, line=first.line, col=first.col)
        if first.k == LOCAL and first.sym == ("fn",):
            return ExportInfo("value", what="a function", line=first.line, col=first.col)
        return ExportInfo("unknown", line=first.line, col=first.col)

    def exprstat(self) -> None:
        e = self.suffixedexp()
        if self.tok.kind in ("=", ","):
            targets = [e]
            self.restassign(targets)
        elif e.k != CALL:
            raise self.error("syntax error")

    def restassign(self, targets: list[_Exp]) -> None:
        target = targets[-1]
        if target.k > INDEX:
            raise self.error("syntax error")
        self.check_readonly(target)
        if self.testnext(","):
            targets.append(self.suffixedexp())
            self.enterlevel()
            self.restassign(targets)
            self.level -= 1
            return
        self.checknext("=")
        values = self.explist()
        for i, t in enumerate(targets):
            self.assigned(t, values[i] if i < len(values) else None)

    def check_readonly(self, e: _Exp) -> None:
        if e.k == LOCAL and e.var is not None and e.var.attr != REG:
            raise self.error(f"attempt to assign to const variable '{e.var.name}'", near=False,
                             at=(e.line, e.col))

    def assigned(self, target: _Exp, value: _Exp | None) -> None:
        """Record an assignment: global writes, table fields for ``return M``, lost local knowledge."""
        if target.k == GLOBAL:
            if target.sym is not None:
                self.facts.globals[self._global_index(target)] = GlobalUse(target.lit or "", target.line,
                                                                           target.col, True)
        elif target.k == LOCAL and target.var is not None:
            # the variable now holds something else: forget what was known about it
            target.var.sym = None if value is None else ("fn",) if value.lit == "function" else value.sym
            target.var.table = None if value is None else value.table
        elif target.k == INDEX and target.base is not None:
            table = target.base.table
            if table is not None and target.base.k == LOCAL:
                if target.key is None:
                    table.open = True
                elif target.key not in table.names:
                    table.names.append(target.key)

    def _global_index(self, target: _Exp) -> int:
        uses = self.facts.globals
        for i in range(len(uses) - 1, -1, -1):
            if uses[i].line == target.line and uses[i].col == target.col and not uses[i].write:
                return i
        raise AssertionError("assigned global was never recorded")

    # -- expressions ---------------------------------------------------------------------------

    def explist(self) -> list[_Exp]:
        values = [self.expr()]
        while self.testnext(","):
            values.append(self.expr())
        return values

    def expr(self) -> _Exp:
        return self.subexpr(0)

    def subexpr(self, limit: int) -> _Exp:
        self.enterlevel()
        tok = self.tok
        begin = len(self.tested)
        if tok.kind in UNARY:
            self.next()
            self.subexpr(UNARY_PRIORITY)
            e = _Exp(OTHER, tok.line, tok.col)
        else:
            e = self.simpleexp()
        op = BINARY.get(self.tok.kind)
        while op is not None and op[0] > limit:
            start = e
            kind = self.tok.kind
            self.next()
            depth = len(self.guards)
            if kind == "and":  # `io and io.stdout`
                self.guards.extend(self.tested[begin:])
            right = self.subexpr(op[1])
            del self.guards[depth:]
            if kind in TESTS:
                self.mark(start, "guarded")
                self.mark(right, "guarded")
            e = _Exp(OTHER, start.line, start.col)
            op = BINARY.get(self.tok.kind)
        self.level -= 1
        return e

    def simpleexp(self) -> _Exp:
        tok = self.tok
        kind = tok.kind
        if kind in ("number", "string", "nil", "true", "false"):
            e = _Exp(OTHER, tok.line, tok.col)
            e.lit = tok.value if kind == "string" else kind
            e.sym = ("str",) if kind == "string" else None
            self.next()
            return e
        if kind == "...":
            if not self.fs.is_vararg:
                raise self.error("cannot use '...' outside a vararg function")
            self.next()
            return _Exp(VARARG, tok.line, tok.col)
        if kind == "{":
            return self.constructor()
        if kind == "function":
            self.next()
            self.body(False, tok.line)
            e = _Exp(OTHER, tok.line, tok.col)
            e.lit = "function"
            return e
        return self.suffixedexp()

    def primaryexp(self) -> _Exp:
        tok = self.tok
        if tok.kind == "name":
            self.next()
            return self.singlevar(tok)
        if tok.kind == "(":
            self.next()
            inner = self.expr()
            self.check_match(")", "(", tok.line)
            e = _Exp(OTHER, tok.line, tok.col)
            e.sym, e.table = inner.sym, inner.table
            e.lit = inner.lit if inner.k == OTHER else None
            return e
        raise self.error("unexpected symbol")

    def suffixedexp(self) -> _Exp:
        e = self.primaryexp()
        while True:
            kind = self.tok.kind
            if kind in (".", "[", ":"):
                self.mark(e, "index")
            if kind == ".":
                e = self.fieldsel(e)
            elif kind == "[":
                self.next()
                key = self.expr()
                self.checknext("]")
                e = self.index(e, key.lit if key.sym == ("str",) else None)
            elif kind == ":":
                self.next()
                name = self.str_checkname()
                e = self.funcargs(e, name.value)
            elif kind in ("(", "string", "{"):
                e = self.funcargs(e, None)
            else:
                return e

    def fieldsel(self, base: _Exp) -> _Exp:
        self.next()
        name = self.str_checkname()
        return self.index(base, name.value)

    def index(self, base: _Exp, key: str | None) -> _Exp:
        e = _Exp(INDEX, base.line, base.col)
        e.base = base
        e.key = key
        sym = base.sym
        if key is not None and sym is not None and sym[0] == "g":
            e.sym = ("f", sym[1], key)
            if sym[1] in FIELD_BASES:
                dotted = f"{sym[1]}.{key}"
                self.tested.append(dotted)
                e.fact = ("f", len(self.facts.fields))
                how = "guarded" if dotted in self.guards else "read"
                self.facts.fields.append(FieldUse(sym[1], key, base.line, base.col, how=how))
        return e

    def funcargs(self, fn: _Exp, method: str | None) -> _Exp:
        tok = self.tok
        kind = tok.kind
        if kind == "(":  # an unclosed one is blamed on the line of this '(' (Lua 5.4.6), not of the callee
            self.next()
            args = [] if self.tok.kind == ")" else self.explist()
            self.check_match(")", "(", tok.line)
        elif kind == "{":
            args = [self.constructor()]
        elif kind == "string":
            arg = _Exp(OTHER, tok.line, tok.col)
            arg.lit, arg.sym = tok.value, ("str",)
            args = [arg]
            self.next()
        else:
            raise self.error("function arguments expected")
        if method is None:
            self.mark(fn, "call", len(args))
        e = _Exp(CALL, fn.line, fn.col)
        e.sym = self.record_call(fn, method, args)
        for arg in args:
            if arg.table is not None and arg.k == LOCAL:
                arg.table.open = True  # setmetatable(M, …) and friends may add anything
        return e

    def record_call(self, fn: _Exp, method: str | None, args: list[_Exp]) -> tuple[str, ...] | None:
        """Note the calls the lint checks; return what the call evaluates to, when that matters."""
        sym = fn.sym
        if sym is None:
            return None
        facts = self.facts
        first = args[0] if args and args[0].sym == ("str",) else None
        if method is not None:
            if sym[0] != "exec":
                return None
            api = EXECUTOR_METHODS.get((sym[1], method))
            if api is not None:
                self.record_targets(api, args)
                return None
            return sym if method in BUILDER_METHODS else None
        if sym[0] == "g":
            if sym[1] == "type" and len(args) == 1:  # `type(io) == "table"`
                self.mark(args[0], "guarded")
            if sym[1] == "require" and args:
                where = args[0]
                facts.requires.append(NameUse(first.lit if first else None, where.line, where.col))
                return ("g", first.lit) if first is not None and first.lit else None
            if sym[1] == "load" and len(args) >= 3 and args[2].sym == ("str",):
                facts.load_modes.append(NameUse(args[2].lit, args[2].line, args[2].col))
            return None
        if sym[0] == "f":
            pair = (sym[1], sym[2])
            api = TARGET_FUNCTIONS.get(pair)
            if api is not None:
                self.record_targets(api, args)
            elif pair in (("json", "object"), ("json", "array")) and args:
                self.record_mark(f"json.{pair[1]}", args[0])
            elif pair in EXECUTOR_FACTORIES:
                return ("exec", sym[1])
        return None

    def record_mark(self, api: str, arg: _Exp) -> None:
        """``json.object(x)``/``json.array(x)`` with a literal the mark cannot apply to (facts.MarkUse)."""
        what = None
        if arg.sym == ("str",):
            what = "string"
        elif arg.k == OTHER and arg.lit in LITERAL_KINDS:
            what = LITERAL_KINDS[arg.lit]
        elif arg.k == OTHER and arg.table is not None and not arg.table.open:
            table = arg.table
            if api == "json.object" and table.items and not table.names:
                what = "list"
            elif api == "json.array" and table.names and not table.items:
                what = "named"
        if what is not None:
            self.facts.marks.append(MarkUse(api, what, arg.line, arg.col))

    def record_targets(self, api: str, args: list[_Exp]) -> None:
        if args and args[0].sym == ("str",) and args[0].lit is not None:
            self.facts.calls.append(CallTarget(api, args[0].lit, args[0].line, args[0].col))
        if "process" in api and len(args) > 1 and args[1].sym == ("str",) and args[1].lit is not None:
            self.facts.calls.append(CallTarget(api, args[1].lit, args[1].line, args[1].col, "worker"))

    def constructor(self) -> _Exp:
        tok = self.tok
        line = tok.line
        table = _Table()
        self.checknext("{")
        while self.tok.kind != "}":
            kind = self.tok.kind
            if kind == "name" and self.lookahead().kind == "=":
                table.names.append(self.tok.value)
                self.next()
                self.checknext("=")
                self.expr()
            elif kind == "[":
                self.next()
                key = self.expr()
                self.checknext("]")
                self.checknext("=")
                self.expr()
                if key.sym == ("str",) and key.lit is not None:
                    table.names.append(key.lit)
                else:
                    table.open = True
            else:
                self.expr()
                table.items = True
            if not (self.testnext(",") or self.testnext(";")):
                break
        self.check_match("}", "{", line)
        e = _Exp(OTHER, tok.line, tok.col)
        e.table = table
        return e

    def body(self, is_method: bool, line: int) -> None:
        fs = _Func(self.fs, line, len(self.labels), len(self.gotos))
        self.fs = fs
        self.enterblock(False)
        pending: list[_Var] = []
        if is_method:
            self.new_localvar("self", pending)
        self.checknext("(")
        if self.tok.kind != ")":
            while True:
                if self.tok.kind == "name":
                    self.new_localvar(self.str_checkname().value, pending)
                elif self.tok.kind == "...":
                    self.next()
                    fs.is_vararg = True
                else:
                    raise self.error("<name> or '...' expected")
                if fs.is_vararg or not self.testnext(","):
                    break
        fs.actvar.extend(pending)
        self.checknext(")")
        self.statlist()
        self.check_match("end", "function", line)
        self.leaveblock()
        assert fs.parent is not None
        self.fs = fs.parent

    def finish(self) -> None:
        facts = self.facts
        facts.local_names = sorted(n for n in self.local_names if n[0] != "(")
        if self.nested_return or len(self.main_returns) > 1:
            facts.exports = ExportInfo("unknown")
        elif self.main_returns:
            facts.exports = self.main_returns[0]
        else:
            facts.exports = ExportInfo("none")


def _judged_field(base: str, key: str) -> bool:
    """Whether the lint judges this field's uses: it is missing from the sandbox, or math.randomseed."""
    return (base, key) in FORBIDDEN_FIELDS or (base == "os" and key not in OS_SHIMS) \
        or (base, key) == ("math", "randomseed")


def _tokens(text: str) -> tuple[list[Token], LuaSyntaxError | None]:
    try:
        return tokenize(text), None
    except LuaSyntaxError as exc:
        # Lua lexes as it parses: a syntax error before the bad token wins, so parse what came first.
        last = exc.tokens[-1] if exc.tokens else None
        marker = Token("<lexerror>", "", last.line if last else 1, last.col if last else 1)
        return [*exc.tokens, marker], exc


def analyze(text: str) -> ChunkFacts:
    """Parse one chunk; a syntax error is returned in ``facts.error``, never raised."""
    text = normalize_newlines(text)
    tokens, lex_error = _tokens(text)
    old_limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old_limit, 20 * MAX_LEVELS + 1000))
    try:
        if tokens[0].kind == "<lexerror>":
            assert lex_error is not None
            raise lex_error
        parser = _Parser(tokens, lex_error)
        parser.mainfunc()
        parser.finish()
        return parser.facts
    except LuaSyntaxError as exc:
        return ChunkFacts(error=SyntaxProblem(exc.message, exc.line, exc.col, exc.lua_line))
    finally:
        sys.setrecursionlimit(old_limit)


def parse_facts(text: str) -> dict[str, Any]:
    """:func:`analyze` in its JSON form (what the cache stores)."""
    return analyze(text).to_json()

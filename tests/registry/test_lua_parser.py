"""The pure-Python Lua parser agrees with real Lua 5.4 (through lupa) on what compiles, and how it fails."""

from __future__ import annotations

import lupa.lua54
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry.lua.lexer import tokenize
from registry.lua.parser import analyze

_RUNTIME = lupa.lua54.LuaRuntime(encoding=None)
_LOAD_ERROR = _RUNTIME.eval(b'function(s) local f, e = load(s, "=x") return e end')


def lua_says(source: str) -> str | None:
    """Real Lua's compile error for ``source`` (``x:LINE: message``), or None when it compiles."""
    error = _LOAD_ERROR(source.encode("utf-8"))
    if error is None:
        return None
    try:
        return bytes(error).decode("utf-8")
    except UnicodeDecodeError:  # the message quotes a string holding raw bytes (e.g. from \u{7FFFFFFF})
        return bytes(error).decode("utf-8", "replace").split(" near ")[0] + " near <bytes>"


def we_say(source: str) -> str | None:
    error = analyze(source).error
    if error is None:
        return None
    message = f"x:{error.lua_line}: {error.message}"
    if any(0xD800 <= ord(c) <= 0xDFFF or c == "\ufffd" for c in message):  # raw bytes: compare the prefix
        return message.split(" near ")[0] + " near <bytes>"
    return message


VALID = [
    "", "return", "return;", "local a = 1 local b = 2", "x = 3 ~= 4 ~ 5", "x = a // b >> 2 & 3 | ~4",
    "local t = {f = function(...) return ... end}", "a, b.c, d[1] = 1, 2, 3", 'f "a" "b" {1} .x = 2',
    'f{}:m"s".x = 1', "(f)()", "(f).x = 1", "for a, b, c in pairs(t) do end", "local function f() end f = 1",
    "x = 0x1p4 + 0x.8 + 1e10 + .5", "x = 08", "goto l\nlocal x\n::l::", "repeat local x; goto c; ::c:: until x",
    "::a:: goto a", "function a.b.c:d() end", "if a then elseif b then else end", "x = not not - # ~ 1",
    "x = a.b.c[d]:e(f)(g)", 'local function f(a, b, ...) local t = {...} return select("#", ...) end',
    'x = "\\z   \n  abc"', "x = 1 // 0", "local x <const>, y <close> = 1, nil",
    "local x <const> = {}\nfunction x.y() end",
    "do ::l1:: end do ::l1:: end", "do goto x end ::x::", "local x; goto l; x = 1; ::l:: ;;",
    "goto l; local x; ::l:: ;; ", "x = 2^3^4", "x = 1 .. 2 .. 3", "local s = [==[\n]]\n]==]", "return (...)",
    "x = {a = 1, b = 2; c = 3,}", "local _ENV = {}; x = 1", "while true do local function f() end break end",
    "for i = 10, 1, -1 do if i == 5 then break end end", "x = '\\u{7FFFFFFF}\\x41\\65\\n'", "return 1, 2, 3;",
    "local t <close> = setmetatable({}, {__close = function() end})", "x = #t + #'abc'", "x = a and b or c",
]
INVALID = [
    "x = 1 1", "return 1 x", "x =", "local t = {a=1,", "x = 1 ..", 'x = "abc" y', "f() = 1", "local x <foo> = 1",
    "local a <close>, b <close> = 1, 2", "goto a; local x; ::a:: print(x)", "::a:: ::a::", "::a:: do ::a:: end",
    "for i=1 do end", "for i do end", "x = 3 + ", "if x then", "if x then\n\nelse\n", "x = y z", "a.b:c = 1",
    "a:b", "local function f() return ... end", "function f(...) return function() return ... end end",
    "x = #", "local 1 = 2", "return return", "x = function(a, 1) end", "x = function(a, ...,b) end",
    "local x <const> = 1\nx = 2", "local x <close> = nil\nfunction x() end\n\n",
    "local x <const> = 1\nlocal function g() x = 1 end",
    "while true do\n local function f()\n break\n end\nend\n\n", "do goto l end\nlocal x\n::l::\nprint(x)",
    "repeat goto c; local x; ::c:: until x", 'x = "a\\qb"', 'x = "ab\ncd"', 'x = "abc', 'x = "\\xg"',
    'x = "\\u{110000000}"', 'x = "\\u123"', "x = [==[ abc ]=]", "x = [=", "x = 1 @", "a, f() = 1, 2",
    'x = "abc" "def"', "(f) = 1", "for i = 1, 2, 3, 4 do end", "return 1;;", "x = 1.2.3", "goto continue",
    "function a:b.c() end", "#!/bin/lua\nx=1", 'x = "a" .. [[b\nc]] y', "break", "x, y", "x.y",
    "x = {,}", "x = {a =}", "x = {[1] 2}", "x = a.1", "x = 1 + + 2", "if x then else elseif y then end",
    "repeat x = 1", "while do end", "local function (x) end", "function f(a,) end", "x = 0x", "x = 1e",
    "x=é", "--[==[\n\n", "x = [[\nabc", "f(\n1,\n2", "local t = {\n1,\n2\n", "x = (1\n+2",
    "function f()\n  if x then\n    return 1\n  end\n", "local x = 1 return x x = 2", "x = 1 -- fine\ny = = 2",
    "local x = y ::z:: ::z::", "goto 1", "::1::",
    # an unclosed call '(' is blamed on its own line, not the callee's (found by the mutation test below)
    "x = a.b \n  ( c[d]:e(f)(g)", "a:b\n(c", "a:b(\n c", "x = a(\n b",
]


@pytest.mark.parametrize("source", VALID)
def test_compiles_like_lua(source: str) -> None:
    assert lua_says(source) is None, "bad test: real Lua refuses this"
    assert we_say(source) is None


@pytest.mark.parametrize("source", INVALID)
def test_fails_like_lua(source: str) -> None:
    expected = lua_says(source)
    assert expected is not None, "bad test: real Lua accepts this"
    assert we_say(source) == expected


def test_error_points_at_the_token_and_lua_line_at_the_end() -> None:
    error = analyze("local function f()\n  x = 1\n").error
    assert error is not None
    assert error.message == "'end' expected (to close 'function' at line 1) near <eof>"
    assert (error.line, error.lua_line) == (3, 3)
    goto = analyze("do\n  goto nowhere\nend\n").error
    assert goto is not None and (goto.line, goto.col) == (2, 3)  # the goto itself, not the end of the chunk


def test_syntax_error_before_a_lexical_error_wins() -> None:
    # Lua reads tokens as it parses: the syntax error on line 1 comes before the bad string on line 2.
    assert we_say('x = = 1\ny = "unfinished') == lua_says('x = = 1\ny = "unfinished')


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    facts = analyze("return " + "(" * 5000 + "1" + ")" * 5000)
    assert facts.error is not None and "nested levels" in facts.error.message
    assert analyze("x = " + "(" * 150 + "1" + ")" * 150).error is None


def test_too_many_locals() -> None:
    source = "local " + ", ".join(f"v{i}" for i in range(201))
    assert we_say(source) == lua_says(source)
    assert we_say("local " + ", ".join(f"v{i}" for i in range(199))) is None


# -- random programs: mutations of valid Lua must be judged exactly as Lua judges them -------------

_SEEDS = [s for s in VALID if s] + [
    'local funcs = require("funcs")\nlocal function main(o)\n  local r, e = funcs.call("app:x", {a = o.b})\n'
    '  if e then return nil, e end\n  for i = 1, #r do r[i] = r[i] * 2 end\n'
    '  return {ok = true}\nend\nreturn {main = main}',
    "local M = {}\nfunction M:go(a, ...)\n  while a > 0 do a = a - 1; if a == 3 then goto out end end\n"
    "  ::out::\n  return self, ...\nend\nreturn M",
]
_PIECES = ["end", "(", ")", "{", "}", "[", "]", "=", ",", ";", "::", "...", "..", "local", "function", "goto",
           "break", "return", "if", "then", "do", "while", "until", "x", "1", "'s'", ".", ":", "+", "not", "<const>",
           "\n", "for", "in", "--", "[[", "]]", "<", ">", "#", "~", "//", "and", "or", "nil"]


@st.composite
def mutated_programs(draw: st.DrawFn) -> str:
    source = draw(st.sampled_from(_SEEDS))
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.integers(0, len(source)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = " " + draw(st.sampled_from(_PIECES)) + " "
        span = draw(st.integers(1, 6))
        if action == "insert":
            source = source[:where] + piece + source[where:]
        elif action == "delete":
            source = source[:where] + source[where + span:]
        else:
            source = source[:where] + piece + source[where + span:]
    return source


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_programs())
def test_random_mutations_agree_with_lua(source: str) -> None:
    assert we_say(source) == lua_says(source)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("abx1 \n()[]{}=.,;:'\"\\-+*/<>~#&|^%end")), max_size=40))
def test_random_text_agrees_with_lua_on_validity(source: str) -> None:
    ours, theirs = we_say(source), lua_says(source)
    assert (ours is None) == (theirs is None), (ours, theirs)


def test_lexer_marks_where_strings_end() -> None:
    tokens = tokenize("x = [[a\nb]]")
    assert tokens[2].kind == "string" and tokens[2].end_line == 2

"""A Lua 5.4 lexer: one compiled regular expression, following llex.c's rules and error messages."""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass

KEYWORDS = frozenset({
    "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
    "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
})

# Order matters: the closed forms of comments and strings come before the "unfinished" catch-alls,
# and multi-character operators before their one-character prefixes.
_TOKEN_RE = re.compile(
    r"""
    (?P<ws>[ \t\n\r\f\v]+)
  | (?P<longcomment>--\[(?P<lce>=*)\[[\s\S]*?\](?P=lce)\])
  | (?P<badlongcomment>--\[=*\[)
  | (?P<comment>--[^\n]*)
  | (?P<longstring>\[(?P<lse>=*)\[[\s\S]*?\](?P=lse)\])
  | (?P<badlongstring>\[=*\[)
  | (?P<baddelim>\[=+)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<number>0[xX](?:[pP][+-]?|[0-9a-fA-F.])*[g-oq-zG-OQ-Z_]?
              |\.?[0-9](?:[eE][+-]?|[0-9a-fA-F.])*[g-zG-Z_]?)
  | (?P<string>"(?:[^"\\\n]|\\z[ \t\n\f\v]*|\\[\s\S])*"|'(?:[^'\\\n]|\\z[ \t\n\f\v]*|\\[\s\S])*')
  | (?P<badstring>["'])
  | (?P<op>\.\.\.|\.\.|==|~=|<=|>=|<<|>>|//|::|[-+*/%^\#&~|<>=(){}\[\];:,.])
  | (?P<bad>.)
    """,
    re.VERBOSE,
)
_DECIMAL_RE = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_HEX_RE = re.compile(r"0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?")
_ESCAPE_RE = re.compile(r"\\(?:z[ \t\n\f\v]*|x(?P<hex>[0-9a-fA-F]{0,2})|(?P<dec>[0-9]{1,3})|u(?P<u>\{[0-9a-fA-F]*\}?)"
                        r"|(?P<nl>\r\n|\n\r|\n|\r)|(?P<c>[\s\S]))")
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
                   "\\": "\\", '"': '"', "'": "'"}
_NEWLINES_RE = re.compile(r"\r\n|\n\r|\r")


class LuaSyntaxError(Exception):
    """A chunk that Lua 5.4 would refuse to compile."""

    def __init__(self, message: str, line: int, col: int) -> None:
        super().__init__(f"{line}:{col}: {message}")
        self.message = message
        self.line = line
        self.col = col


@dataclass(frozen=True, slots=True)
class Token:
    #: ``name``, ``string``, ``number``, ``<eof>``, or the keyword/operator itself
    kind: str
    value: str
    line: int
    col: int

    def near(self) -> str:
        """How Lua names the token in an error message."""
        if self.kind == "<eof>":
            return "near <eof>"
        return f"near '{self.value}'"


def normalize_newlines(text: str) -> str:
    """Lua counts \\r\\n, \\n\\r and \\r as one line break each, like \\n."""
    return _NEWLINES_RE.sub("\n", text) if "\r" in text else text


def tokenize(text: str) -> list[Token]:
    """All tokens of ``text`` (newlines already normalized), ending with an ``<eof>`` token."""
    newlines = [m.start() for m in re.finditer("\n", text)]

    def where(offset: int) -> tuple[int, int]:
        index = bisect.bisect_left(newlines, offset)
        start = newlines[index - 1] + 1 if index else 0
        return index + 1, offset - start + 1

    tokens: list[Token] = []
    append = tokens.append
    for match in _TOKEN_RE.finditer(text):
        group = match.lastgroup
        if group in ("ws", "comment", "longcomment"):
            continue
        start = match.start()
        if group == "name":
            word = match.group()
            line, col = where(start)
            append(Token(word if word in KEYWORDS else "name", word, line, col))
        elif group == "op":
            line, col = where(start)
            append(Token(match.group(), match.group(), line, col))
        elif group == "string":
            line, col = where(start)
            append(Token("string", _decode_string(match.group()[1:-1], line, col), line, col))
        elif group == "number":
            line, col = where(start)
            raw = match.group()
            if not (_DECIMAL_RE.fullmatch(raw) or _HEX_RE.fullmatch(raw)):
                raise LuaSyntaxError(f"malformed number near '{raw}'", line, col)
            append(Token("number", raw, line, col))
        elif group == "longstring":
            line, col = where(start)
            body = match.group()
            level = len(match.group("lse"))
            inner = body[level + 2: len(body) - level - 2]
            if inner.startswith("\n"):  # the first newline right after the opening bracket is skipped
                inner = inner[1:]
            append(Token("string", inner, line, col))
        else:
            _raise_lexical(group, match, text, where)
    line, col = where(len(text))
    append(Token("<eof>", "<eof>", line, col))
    return tokens


def _raise_lexical(group: str | None, match: re.Match[str], text: str,
                   locate: Callable[[int], tuple[int, int]]) -> None:
    if group == "badlongcomment":
        line, _ = locate(len(text))
        raise LuaSyntaxError("unfinished long comment near <eof>", line, 1)
    if group == "badlongstring":
        line, _ = locate(len(text))
        raise LuaSyntaxError("unfinished long string near <eof>", line, 1)
    line, col = locate(match.start())
    if group == "baddelim":
        raise LuaSyntaxError(f"invalid long string delimiter near '{match.group()}'", line, col)
    if group == "badstring":
        rest = text[match.start():]
        end = rest.find("\n")
        snippet = rest if end < 0 else rest[:end]
        raise LuaSyntaxError(f"unfinished string near '{snippet}'", line, col)
    raise LuaSyntaxError(f"unexpected symbol near '{match.group()}'", line, col)


def _decode_string(body: str, line: int, col: int) -> str:
    """The value of a short string's body, validating escapes as Lua does."""
    if "\\" not in body:
        return body

    def escape(m: re.Match[str]) -> str:
        text = m.group()
        if text[1] == "z":
            return ""
        if m.group("nl") is not None:
            return "\n"
        hexdigits = m.group("hex")
        if hexdigits is not None:
            if len(hexdigits) < 2:
                raise LuaSyntaxError(f"hexadecimal digit expected near '\\x{hexdigits}'", line, col)
            return chr(int(hexdigits, 16))
        dec = m.group("dec")
        if dec is not None:
            if int(dec) > 255:
                raise LuaSyntaxError(f"decimal escape too large near '\\{dec}'", line, col)
            return chr(int(dec))
        uni = m.group("u")
        if uni is not None:
            if not uni.startswith("{"):
                raise LuaSyntaxError("missing '{' in \\u{xxxx}", line, col)
            if len(uni) < 2 or uni[1] == "}":
                raise LuaSyntaxError("hexadecimal digit expected in \\u{xxxx}", line, col)
            if not uni.endswith("}"):
                raise LuaSyntaxError("missing '}' in \\u{xxxx}", line, col)
            code = int(uni[1:-1], 16)
            if code > 0x7FFFFFFF:
                raise LuaSyntaxError("UTF-8 value too large in \\u{xxxx}", line, col)
            return chr(code) if code < 0x110000 else "\ufffd"
        char = m.group("c")
        if char in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[char]
        raise LuaSyntaxError(f"invalid escape sequence '\\{char}'", line, col)

    return _ESCAPE_RE.sub(escape, body)

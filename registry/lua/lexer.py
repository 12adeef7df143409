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
_ESCAPE_RE = re.compile(r"\\(?:z[ \t\n\f\v]*|x(?P<hex>[0-9a-fA-F]{0,2})|(?P<dec>[0-9]{1,3})"
                        r"|u(?P<u>\{?[0-9a-fA-F]*\}?)|(?P<nl>\r\n|\n\r|\n|\r)|(?P<c>[\s\S]))")
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
                   "\\": "\\", '"': '"', "'": "'"}
#: the body of a string that never closes: up to the line break (or end of text) that ends it
_UNFINISHED_RE = {q: re.compile(rf"(?:[^{q}\\\n]|\\z[ \t\n\f\v]*|\\[\s\S])*") for q in "\"'"}
_NEWLINES_RE = re.compile(r"\r\n|\n\r|\r")


class LuaSyntaxError(Exception):
    """A chunk that Lua 5.4 would refuse to compile.

    ``line``/``col`` point at what to fix (for a bad ``goto``, the goto itself);
    ``lua_line`` is the line real Lua names in its message, which for errors found
    at the end of a block is where the block ends.
    """

    def __init__(self, message: str, line: int, col: int, *, lua_line: int | None = None) -> None:
        super().__init__(f"{line}:{col}: {message}")
        self.message = message
        self.line = line
        self.col = col
        self.lua_line = line if lua_line is None else lua_line
        #: the tokens read before a lexical error (the parser reports earlier syntax errors first)
        self.tokens: list[Token] = []


@dataclass(frozen=True, slots=True)
class Token:
    #: ``name``, ``string``, ``number``, ``<eof>``, or the keyword/operator itself
    kind: str
    value: str
    line: int
    col: int
    #: how Lua's error messages show a string token (quotes included, escapes decoded)
    raw: str = ""
    #: the line the token ends on (long strings span lines; Lua reports that line)
    end_line: int = 0

    def near(self) -> str:
        """How Lua names the token in an error message."""
        if self.kind == "<eof>":
            return "near <eof>"
        return f"near '{self.raw or self.value}'"


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
            raw = match.group()
            try:
                value = _decode_string(raw[1:-1], line, col, raw[0])
            except LuaSyntaxError as exc:
                exc.tokens = tokens
                raise
            end_line = line + raw.count("\n")
            append(Token("string", value, line, col, raw[0] + value + raw[0], end_line))
        elif group == "number":
            line, col = where(start)
            raw = match.group()
            if not (_DECIMAL_RE.fullmatch(raw) or _HEX_RE.fullmatch(raw)):
                error = LuaSyntaxError(f"malformed number near '{raw}'", line, col)
                error.tokens = tokens
                raise error
            append(Token("number", raw, line, col))
        elif group == "longstring":
            line, col = where(start)
            body = match.group()
            level = len(match.group("lse"))
            inner = body[level + 2: len(body) - level - 2]
            shown = body
            if inner.startswith("\n"):  # the first newline right after the opening bracket is skipped
                inner = inner[1:]
                shown = body[: level + 2] + body[level + 3:]
            append(Token("string", inner, line, col, shown, line + body.count("\n")))
        elif group == "bad":
            # Like llex.c, any other character is a one-character token the parser then rejects
            # ("unexpected symbol near '@'"), so the error depends on where it appears.
            line, col = where(start)
            char = match.group()
            shown = char if " " < char < "\x7f" else f"<\\{char.encode('utf-8', 'surrogatepass')[0]}>"
            append(Token("<bad>", char, line, col, shown))
        else:
            try:
                _raise_lexical(group, match, text, where)
            except LuaSyntaxError as exc:
                exc.tokens = tokens
                raise
    line, col = where(len(text))
    append(Token("<eof>", "<eof>", line, col))
    return tokens


def _raise_lexical(group: str | None, match: re.Match[str], text: str,
                   locate: Callable[[int], tuple[int, int]]) -> None:
    line, col = locate(match.start())
    if group in ("badlongcomment", "badlongstring"):
        what = "comment" if group == "badlongcomment" else "string"
        last, _ = locate(len(text))
        raise LuaSyntaxError(f"unfinished long {what} (starting at line {line}) near <eof>", line, col,
                             lua_line=last)
    if group == "baddelim":
        raise LuaSyntaxError(f"invalid long string delimiter near '{match.group()}'", line, col)
    if group == "badstring":
        quote = match.group()
        body = _UNFINISHED_RE[quote].match(text, match.start() + 1)
        assert body is not None  # the pattern matches the empty string
        # Lua reads left to right: a bad escape before the end of the line is reported first.
        decoded = _decode_string(body.group(), line, col, quote, partial=True)
        at_eof = body.end() >= len(text) or text[body.end():] == "\\"  # a lone backslash, then EOF
        near = "<eof>" if at_eof else f"'{quote}{decoded}'"
        raise LuaSyntaxError(f"unfinished string near {near}", line, col, lua_line=locate(body.end())[0])
    raise LuaSyntaxError(f"unexpected symbol near '{match.group()}'", line, col)


def _decode_string(body: str, line: int, col: int, quote: str = '"', *, partial: bool = False) -> str:
    """The value of a short string's body, validating escapes as Lua does (and with its messages)."""
    if "\\" not in body:
        return body
    decoded: list[str] = []
    pos = 0

    def fail(message: str, upto: str) -> LuaSyntaxError:
        return LuaSyntaxError(f"{message} near '{quote}{''.join(decoded)}{upto}'", line, col)

    for m in _ESCAPE_RE.finditer(body):
        decoded.append(body[pos:m.start()])
        pos = m.end()
        text = m.group()
        after = body[m.end():m.end() + 1] or (quote if not partial else "")
        if text[1] == "z":
            continue
        if m.group("nl") is not None:
            decoded.append("\n")
            continue
        hexdigits = m.group("hex")
        if hexdigits is not None:
            if len(hexdigits) < 2:
                raise fail("hexadecimal digit expected", f"\\x{hexdigits}{after}")
            decoded.append(chr(int(hexdigits, 16)))
            continue
        dec = m.group("dec")
        if dec is not None:
            if int(dec) > 255:
                raise fail("decimal escape too large", f"\\{dec}{after}")
            decoded.append(chr(int(dec)))
            continue
        uni = m.group("u")
        if uni is not None:
            decoded.append(_utf8_escape(uni, after, fail))
            continue
        char = m.group("c")
        if char in _SIMPLE_ESCAPES:
            decoded.append(_SIMPLE_ESCAPES[char])
            continue
        raise fail("invalid escape sequence", f"\\{char}")
    decoded.append(body[pos:])
    return "".join(decoded)


def _utf8_escape(uni: str, after: str, fail: Callable[[str, str], LuaSyntaxError]) -> str:
    if not uni.startswith("{"):
        raise fail("missing '{'", f"\\u{uni[:1] or after}")
    digits = uni[1:].rstrip("}")
    if not digits:
        raise fail("hexadecimal digit expected", f"\\u{{{uni[1:2] or after}")
    code = 0
    for i, digit in enumerate(digits):
        if code > (0x7FFFFFFF >> 4):
            raise fail("UTF-8 value too large", f"\\u{{{digits[:i + 1]}")
        code = (code << 4) + int(digit, 16)
    if not uni.endswith("}"):
        raise fail("missing '}'", f"\\u{{{digits}{after}")
    return chr(code) if code < 0x110000 else "\ufffd"

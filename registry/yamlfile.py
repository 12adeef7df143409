"""Stage 1: read one YAML file safely, keeping the line and column of every node.

PyYAML's safe composer gives us a node tree with marks; we build plain Python
values from it ourselves so that every value's position is recorded under its
JSON path, and so that alias expansion (a "billion laughs" bomb) is bounded.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from registry.diagnostics import Diagnostic, display_path, json_path

try:  # libyaml is several times faster; keep the pure-Python loader as a fallback
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on the PyYAML build
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

#: Larger entry files are refused before parsing: nobody writes 10 MiB of entries by hand.
MAX_FILE_BYTES = 10 * 1024 * 1024
#: Upper bound on nodes built from one document, aliases expanded (YAML bomb guard).
MAX_NODES = 200_000
#: Deepest nesting of mappings and lists (counted from the document) that is built; deeper ones are FC009.
MAX_DEPTH = 200

JsonPath = tuple[str | int, ...]
_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True, slots=True)
class Position:
    line: int  # 1-based
    col: int  # 1-based


@dataclass
class YamlDocument:
    """One parsed file: its data, and the position of every value by JSON path."""

    path: Path
    data: Any = None
    positions: dict[JsonPath, Position] = field(default_factory=dict)
    key_positions: dict[JsonPath, Position] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    #: sha256 of the file's bytes (keys validate's schema cache); empty when it could not be read
    digest: str = ""

    @property
    def display(self) -> str:
        return display_path(self.path)

    def position(self, path: JsonPath) -> Position:
        """Position of the value at ``path``, or of its nearest ancestor that exists."""
        probe = tuple(path)
        while probe:
            if probe in self.positions:
                return self.positions[probe]
            probe = probe[:-1]
        return self.positions.get((), Position(1, 1))

    def key_position(self, path: JsonPath) -> Position:
        """Position of the mapping key that names ``path`` (falls back to the value)."""
        return self.key_positions.get(tuple(path)) or self.position(path)

    def diagnostic(
        self,
        path: JsonPath,
        code: str,
        message: str,
        hint: str = "",
        *,
        at_key: bool = False,
        severity: Any = None,
    ) -> Diagnostic:
        pos = self.key_position(path) if at_key else self.position(path)
        extra = {"severity": severity} if severity is not None else {}
        return Diagnostic(
            file=self.display,
            line=pos.line,
            col=pos.col,
            code=code,
            message=message,
            hint=hint,
            path=json_path(path),
            **extra,
        )


class _TooManyNodes(Exception):
    pass


class _Builder:
    """Turns a composed node tree into Python values, recording positions."""

    def __init__(self, doc: YamlDocument, loader: Any) -> None:
        self.doc = doc
        self.loader = loader
        self.count = 0
        self.duplicates: list[tuple[JsonPath, str]] = []
        #: the first collection nested deeper than MAX_DEPTH (not built: it reads as null)
        self.too_deep: JsonPath | None = None

    def build(self, node: yaml.Node, path: JsonPath) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _TooManyNodes
        mark = node.start_mark
        self.doc.positions.setdefault(path, Position(mark.line + 1, mark.column + 1))
        if len(path) >= MAX_DEPTH and isinstance(node, yaml.CollectionNode):
            self.too_deep = self.too_deep or path
            return None
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _STR_TAG:  # the common case, without the constructor's overhead
                return node.value
            return self.loader.construct_object(node, deep=True)
        if isinstance(node, yaml.MappingNode):
            if any(key.tag == _MERGE_TAG for key, _ in node.value):
                self.loader.flatten_mapping(node)  # resolves `<<: *anchor` merge keys
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == _STR_TAG and isinstance(key_node, yaml.ScalarNode):
                    key = key_node.value
                else:
                    key = self.loader.construct_object(key_node, deep=True)
                    if not isinstance(key, str | int | float | bool) and key is not None:
                        key = str(key)
                child = (*path, key if isinstance(key, str) else str(key))
                if key in result:
                    self.duplicates.append((child, str(key)))
                key_mark = key_node.start_mark
                self.doc.key_positions[child] = Position(key_mark.line + 1, key_mark.column + 1)
                result[key] = self.build(value_node, child)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self.loader.construct_object(node, deep=True)


def _error_position(exc: yaml.YAMLError) -> Position:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is None:
        return Position(1, 1)
    return Position(mark.line + 1, mark.column + 1)


def parse_yaml(path: Path) -> YamlDocument:
    """Read and parse ``path``. Problems become diagnostics on the result; nothing raises."""
    doc = YamlDocument(path=path)
    shown = doc.display

    def fail(code: str, message: str, hint: str, pos: Position = Position(1, 1)) -> YamlDocument:
        doc.diagnostics.append(
            Diagnostic(file=shown, line=pos.line, col=pos.col, code=code, message=message, hint=hint)
        )
        return doc

    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return fail(
                "FC002",
                f"file is {size // (1024 * 1024)} MiB, larger than the "
                f"{MAX_FILE_BYTES // (1024 * 1024)} MiB limit",
                "split the entries into several smaller files",
            )
        raw = path.read_bytes()
        doc.digest = hashlib.sha256(raw).hexdigest()
    except OSError as exc:
        return fail("FC001", f"cannot read file: {exc.strerror or exc}", "check the path and its permissions")

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return fail(
            "FC003",
            f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})",
            "save the file as UTF-8",
            Position(line, col),
        )
    if text.startswith("\ufeff"):
        text = text[1:]

    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return fail("FC006", "file is empty",
                        "add `version`, `namespace` and `entries`, or delete the file")
        builder = _Builder(doc, loader)
        doc.data = builder.build(node, ())
    except _TooManyNodes:
        doc.data = None
        return fail(
            "FC005",
            f"document expands to more than {MAX_NODES} nodes (too many aliases?)",
            "remove the YAML anchors/aliases that expand recursively (a 'billion laughs' document)",
        )
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if "expected a single document" in str(exc):
            return fail(
                "FC006",
                "file holds more than one YAML document",
                "keep one document per file (remove the extra `---`)",
                _error_position(exc),
            )
        return fail("FC004", f"YAML syntax error: {problem}", "fix the YAML syntax at this position",
                    _error_position(exc))
    except (ValueError, TypeError, RecursionError) as exc:
        return fail("FC004", f"YAML value cannot be read: {exc}", "fix the YAML value at this position")
    finally:
        loader.dispose()

    if doc.data is None:
        return fail("FC006", "file holds only null (`~`), no entries",
                    "add `version`, `namespace` and `entries`, or delete the file")
    if builder.too_deep is not None:
        doc.diagnostics.append(doc.diagnostic(
            builder.too_deep, "FC009", f"value nested deeper than {MAX_DEPTH} levels",
            "flatten it: the registry and workers do not read deeper structures"))
    for dup_path, key in builder.duplicates:
        doc.diagnostics.append(
            doc.diagnostic(dup_path, "FC007", f"duplicate key {key!r} in mapping",
                           "remove one of the keys; YAML keeps only the last", at_key=True)
        )
    return doc

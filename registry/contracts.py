"""Schemas as contracts: an entry's ``input_schema`` / ``output_schema`` checked against values.

Pure (no temporalio): ``flowctl validate`` uses :func:`schema_problems` to refuse a schema
that could not be enforced (FC110 not JSON Schema 2020-12, FC117 a ``$ref`` into nowhere,
FC118 nested too deep, FC119 not self-contained); the runner uses :func:`entry_violation`
wherever a run or an activity starts or ends (docs/entries.md, Contracts). Validators are
compiled once per revision digest and field, and kept in a small bounded cache.

A :class:`Violation` names the first problem found: the JSON path of the offending value
(``$.items[2].qty``), the schema rule it broke (``type`` at ``#/properties/items/items/...``)
and jsonschema's message, cut to a readable length.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urldefrag, urljoin

import jsonschema
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from registry.errors import FlowError

__all__ = [
    "CONTRACT_FIELDS",
    "KIND_OF_FIELD",
    "MAX_SCHEMA_DEPTH",
    "ContractError",
    "SchemaProblem",
    "Violation",
    "contract_message",
    "entry_violation",
    "json_path_text",
    "schema_depth",
    "schema_problems",
    "value_violation",
]

#: The entry fields that are contracts, and the error kind a value breaking each one gets.
CONTRACT_FIELDS = ("input_schema", "output_schema")
KIND_OF_FIELD = {"input_schema": "INVALID_INPUT", "output_schema": "INVALID_OUTPUT"}
#: Deepest nesting of mappings and lists a schema may have (deeper ones exhaust jsonschema's recursion).
MAX_SCHEMA_DEPTH = 64
#: The ``$schema`` values meaning draft 2020-12 (the only dialect flowctl enforces).
DIALECTS_2020_12 = frozenset({"https://json-schema.org/draft/2020-12/schema",
                              "https://json-schema.org/draft/2020-12/schema#"})
#: Compiled validators kept per process (revision digest, field).
CACHE_SIZE = 512
#: jsonschema's messages quote the whole offending value: cut them to this many characters.
MESSAGE_CHARS = 300
_ROOT_URI = "https://flowctl.invalid/contract.json"  # a base for relative $refs; never fetched
#: Keywords whose values are plain data, and those whose values map names to subschemas.
_DATA_KEYWORDS = frozenset({"enum", "const", "examples", "default"})
_NAMED_SUBSCHEMAS = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})


@dataclass(frozen=True)
class SchemaProblem:
    """Why a schema cannot be enforced: a code, where inside the schema, a message and a fix."""

    code: str
    #: path inside the schema document (keys and list indexes)
    path: tuple[str | int, ...]
    message: str
    hint: str


@dataclass(frozen=True)
class Violation:
    """The first way a value breaks a contract."""

    #: the JSON path of the offending value, ``$`` for the value itself
    path: str
    #: the schema keyword that failed (``type``, ``required``, ``minimum``...)
    rule: str
    #: where that keyword is in the schema, as a JSON pointer (``#/properties/n/type``)
    schema_path: str
    message: str
    #: the same path as keys and list indexes
    parts: tuple[str | int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (the details of an INVALID_INPUT / INVALID_OUTPUT error)."""
        return {"path": self.path, "rule": self.rule, "schema_path": self.schema_path, "message": self.message}

    def describe(self) -> str:
        """One line: where, what, which rule."""
        return f"at {self.path}: {self.message} (schema rule `{self.rule}` at {self.schema_path})"


class ContractError(FlowError):
    """A start refused before anything started: the input breaks the entry's ``input_schema`` (exit 1)."""

    def __init__(self, entry_id: str, field: str, violation: Violation) -> None:
        what = "input" if field == "input_schema" else "result"
        super().__init__(contract_message(entry_id, field, violation),
                         hint=f"fix the {what} at {violation.path}, or the entry's {field} "
                              f"(`flowctl registry show {entry_id}`)")
        self.kind = KIND_OF_FIELD[field]
        self.violation = violation


def contract_message(entry_id: str, field: str, violation: Violation) -> str:
    """The one-line message of a broken contract, as runs and activities report it."""
    what = "input" if field == "input_schema" else "result"
    return f"{entry_id}: the {what} does not match its {field} {violation.describe()}"


def json_path_text(parts: Iterator[Any] | tuple[Any, ...] | list[Any]) -> str:
    """``$.items[2].qty`` from path parts (keys that are not plain names are quoted)."""
    text = "$"
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif str(part).isidentifier():
            text += f".{part}"
        else:
            text += f"[{str(part)!r}]"
    return text


def schema_depth(value: Any, limit: int = MAX_SCHEMA_DEPTH) -> tuple[int, tuple[str | int, ...]]:
    """How deep mappings and lists nest in ``value`` (stops past ``limit``), and the path to the deepest one."""
    deepest: tuple[int, tuple[str | int, ...]] = (0, ())
    stack: list[tuple[Any, int, tuple[str | int, ...]]] = [(value, 1, ())]
    while stack:
        node, depth, path = stack.pop()
        if not isinstance(node, dict | list):
            continue
        if depth > deepest[0]:
            deepest = (depth, path)
        if depth > limit:
            return deepest
        children = node.items() if isinstance(node, dict) else enumerate(node)
        stack.extend((child, depth + 1, (*path, key)) for key, child in children)
    return deepest


def schema_problems(schema: Any) -> list[SchemaProblem]:
    """Every reason ``schema`` cannot be enforced as JSON Schema 2020-12 (empty: it can)."""
    if isinstance(schema, bool):
        return []
    depth, deepest = schema_depth(schema)
    if depth > MAX_SCHEMA_DEPTH:
        return [SchemaProblem("FC118", deepest, f"the schema nests deeper than {MAX_SCHEMA_DEPTH} levels",
                              "flatten it: move repeated parts under `$defs` and point at them with `$ref`")]
    dialect = schema.get("$schema") if isinstance(schema, dict) else None
    if dialect is not None and dialect not in DIALECTS_2020_12:
        return [SchemaProblem("FC119", ("$schema",), f"`$schema: {dialect}` is not JSON Schema draft 2020-12",
                              "remove `$schema` or write https://json-schema.org/draft/2020-12/schema "
                              "(flowctl enforces 2020-12 rules)")]
    try:
        Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        return [SchemaProblem("FC110", tuple(exc.absolute_path), f"not a valid JSON Schema: {_cut(exc.message)}",
                              "fix the schema (draft 2020-12); see "
                              "https://json-schema.org/understanding-json-schema/")]
    except RecursionError:  # pragma: no cover - the depth limit keeps check_schema well inside the stack
        return [SchemaProblem("FC118", (), "the schema is too deeply nested to check", "flatten it")]
    return list(_reference_problems(schema))


def _reference_problems(schema: dict[str, Any]) -> Iterator[SchemaProblem]:
    """FC117 for a ``$ref`` that points nowhere inside the schema, FC119 for one to another document."""
    registry: Registry = Registry().with_resource(
        _ROOT_URI, Resource.from_contents(schema, default_specification=DRAFT202012)).crawl()
    # (node, base URI, path, whether node is a map of names to subschemas such as `properties`)
    stack: list[tuple[Any, str, tuple[str | int, ...], bool]] = [(schema, _ROOT_URI, (), False)]
    while stack:
        node, base, path, named = stack.pop()
        if isinstance(node, list):
            stack.extend((child, base, (*path, i), False) for i, child in enumerate(node))
            continue
        if not isinstance(node, dict):
            continue
        if named:
            stack.extend((child, base, (*path, key), False) for key, child in node.items())
            continue
        if isinstance(node.get("$id"), str):
            base = urljoin(base, node["$id"])
        ref = node.get("$ref")
        if isinstance(ref, str):
            problem = _reference_problem(registry, base, ref, (*path, "$ref"))
            if problem is not None:
                yield problem
        for key, child in node.items():
            if key not in _DATA_KEYWORDS:
                stack.append((child, base, (*path, key), key in _NAMED_SUBSCHEMAS))


def _reference_problem(registry: Registry, base: str, ref: str, where: tuple[str | int, ...]) -> SchemaProblem | None:
    target = urldefrag(urljoin(base, ref)).url
    if target not in registry:
        return SchemaProblem("FC119", where, f"`$ref: {ref}` points into another document",
                             "a contract must be self-contained: copy the referenced schema under `$defs` "
                             "and write `$ref: '#/$defs/NAME'` (workers fetch nothing)")
    try:
        registry.resolver(base_uri=base).lookup(ref)
    except Unresolvable:
        return SchemaProblem("FC117", where, f"`$ref: {ref}` points at nothing in the schema",
                             "point it at a part that exists, e.g. `#/$defs/NAME` with NAME under `$defs`")
    return None


# ---------------------------------------------------------------------- checking values


_cache: OrderedDict[tuple[str, str], Draft202012Validator | None] = OrderedDict()
_cache_lock = threading.Lock()


def entry_violation(digest: str, data: dict[str, Any], field: str, value: Any) -> Violation | None:
    """How ``value`` breaks the entry's ``field`` (input_schema / output_schema), or None.

    ``digest`` is the entry revision's: its validators are compiled once and cached. An entry
    without the field, or with a schema validate would have refused, accepts every value.
    """
    key = (digest, field)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            validator = _cache[key]
        else:
            validator = _compile(data.get(field))
            _cache[key] = validator
            while len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
    return None if validator is None else _first_violation(validator, value)


def value_violation(schema: Any, value: Any) -> Violation | None:
    """How ``value`` breaks ``schema`` (uncached: tests and one-off checks)."""
    validator = _compile(schema)
    return None if validator is None else _first_violation(validator, value)


def _compile(schema: Any) -> Draft202012Validator | None:
    if not isinstance(schema, dict | bool) or schema_problems(schema):
        return None
    return Draft202012Validator(schema)


def _first_violation(validator: Draft202012Validator, value: Any) -> Violation | None:
    try:
        error = best_match(validator.iter_errors(value))
    except RecursionError:
        return Violation("$", "depth", "#", "the value nests too deeply to be checked against the schema")
    except Unresolvable as exc:  # pragma: no cover - validate refuses such schemas (FC117)
        return Violation("$", "$ref", "#", f"the schema's $ref cannot be resolved: {exc}")
    if error is None:
        return None
    return _violation(error, validator.schema)


def _location(root: Any, target: Any) -> tuple[str | int, ...] | None:
    """The path of the subschema ``target`` (by identity) inside ``root``; None when it is not in it."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        if node is target:
            return path
        if isinstance(node, dict):
            stack.extend((child, (*path, key)) for key, child in node.items() if key not in _DATA_KEYWORDS)
        elif isinstance(node, list):
            stack.extend((child, (*path, i)) for i, child in enumerate(node))
    return None


def _violation(error: ValidationError, root: Any) -> Violation:
    # where the rule is written: jsonschema's schema path runs through `$ref`s as if they were not there
    where = _location(root, error.schema)
    rule_path = (*where, error.validator) if where is not None else tuple(error.absolute_schema_path)
    pointer = "#" + "".join(f"/{_escape(part)}" for part in rule_path)
    parts = tuple(error.absolute_path)
    message = error.message
    if error.validator == "type":  # jsonschema quotes values in Python (None, True): say it in JSON
        expected = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        message = f"{_json_text(error.instance)} is not of type {' or '.join(map(str, expected))}"
    return Violation(path=json_path_text(parts), rule=str(error.validator), schema_path=pointer,
                     message=_cut(message), parts=parts)


def _json_text(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=repr)[:MESSAGE_CHARS]
    except (ValueError, RecursionError):
        return type(value).__name__


def _escape(part: Any) -> str:
    return str(part).replace("~", "~0").replace("/", "~1")


def _cut(message: str) -> str:
    return message if len(message) <= MESSAGE_CHARS else message[:MESSAGE_CHARS - 1] + "…"

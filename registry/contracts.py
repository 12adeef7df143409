"""Schemas as contracts: an entry's ``input_schema`` / ``output_schema`` checked against values.

Pure (no temporalio): ``flowctl validate`` uses :func:`schema_problems` to refuse a schema
that could not be enforced (FC110 not JSON Schema 2020-12, FC117 a ``$ref`` into nowhere,
FC118 nested too deep, FC119 not self-contained, FC128 a pattern RE2 cannot run); the runner uses
:func:`entry_violation`
wherever a run or an activity starts or ends (docs/entries.md, Contracts). Validators are
compiled once per revision digest and field, and kept in a small bounded cache.

A :class:`Violation` names the first problem found: the JSON path of the offending value
(``$.items[2].qty``), the schema rule it broke (``type`` at ``#/properties/items/items/...``)
and jsonschema's message, cut to a readable length.

Patterns (``pattern``, ``patternProperties``, and ``additionalProperties`` next to them) are
matched with RE2, whose time is linear in the input: a schema written by one team cannot make a
shared worker backtrack for minutes on an input sent by anyone (``^(a+)+$``). Validate refuses
patterns RE2 cannot run (backreferences, lookaround) and ``unevaluatedProperties`` next to
``patternProperties`` (jsonschema matches those with Python's backtracking ``re``).
"""

from __future__ import annotations

import functools
import json
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urldefrag, urljoin

import jsonschema
import re2
from jsonschema import Draft202012Validator, validators
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


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a refused pattern is our diagnostic, not a line on stderr


@functools.lru_cache(maxsize=1024)
def _regex(pattern: str) -> Any:
    """The RE2 program of ``pattern`` (re2.error when RE2 cannot run it)."""
    return re2.compile(pattern, options=_RE2_OPTIONS)


def _matches(pattern: str, text: str) -> bool:
    return _regex(pattern).search(text) is not None


def _pattern(validator: Any, pattern: str, instance: Any, _schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _matches(pattern, instance):
        yield ValidationError(f"{_json_text(instance)} does not match {pattern!r}")


def _pattern_properties(validator: Any, patterns: dict[str, Any], instance: Any,
                        _schema: Any) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _matches(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(validator: Any, additional: Any, instance: Any,
                           schema: dict[str, Any]) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    named, patterns = schema.get("properties", {}), list(schema.get("patternProperties", {}))
    extras = [key for key in instance if key not in named and not any(_matches(p, key) for p in patterns)]
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        listed = ", ".join(repr(extra) for extra in sorted(extras, key=str))
        yield ValidationError(f"Additional properties are not allowed ({listed} "
                              f"{'was' if len(extras) == 1 else 'were'} unexpected)")


#: Draft 2020-12 with RE2 for every pattern (see the module's docstring).
ContractValidator = validators.extend(Draft202012Validator, {
    "pattern": _pattern, "patternProperties": _pattern_properties, "additionalProperties": _additional_properties})


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
    return [*_pattern_problems(schema), *_reference_problems(schema)]


def _subschemas(schema: Any) -> Iterator[tuple[dict[str, Any], tuple[str | int, ...]]]:
    """Every subschema (a mapping in a schema position) of ``schema``, with its path."""
    stack: list[tuple[Any, tuple[str | int, ...], bool]] = [(schema, (), False)]
    while stack:
        node, path, named = stack.pop()
        if isinstance(node, list):
            stack.extend((child, (*path, i), False) for i, child in enumerate(node))
        elif isinstance(node, dict) and named:
            stack.extend((child, (*path, key), False) for key, child in node.items())
        elif isinstance(node, dict):
            yield node, path
            stack.extend((child, (*path, key), key in _NAMED_SUBSCHEMAS)
                         for key, child in node.items() if key not in _DATA_KEYWORDS)


def _pattern_problems(schema: Any) -> Iterator[SchemaProblem]:
    """FC128: a pattern RE2 cannot run, or unevaluatedProperties next to patternProperties."""
    for node, path in _subschemas(schema):
        patterns = [((*path, "pattern"), node["pattern"])] if isinstance(node.get("pattern"), str) else []
        properties = node.get("patternProperties")
        if isinstance(properties, dict):
            patterns += [((*path, "patternProperties", key), key) for key in properties]
            if "unevaluatedProperties" in node:
                yield SchemaProblem("FC128", (*path, "unevaluatedProperties"),
                                    "`unevaluatedProperties` next to `patternProperties` is not enforced in "
                                    "linear time", "use `additionalProperties` instead (flowctl matches "
                                    "patterns with RE2)")
        for where, pattern in patterns:
            try:
                _regex(pattern)
            except re2.error as exc:
                reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else exc
                yield SchemaProblem("FC128", where, f"pattern {pattern!r} cannot be checked in linear time "
                                    f"(RE2: {reason})", "rewrite it without backreferences and lookaround "
                                    "(\\1, (?=...), (?!...)): RE2 syntax, https://github.com/google/re2/wiki/Syntax")


def _reference_problems(schema: dict[str, Any]) -> Iterator[SchemaProblem]:
    """FC117 for a ``$ref`` that points nowhere inside the schema, FC119 for one to another document."""
    registry: Registry = Registry().with_resource(
        _ROOT_URI, Resource.from_contents(schema, default_specification=DRAFT202012)).crawl()
    # (node, base URI, path, whether node is a map of names to subschemas such as `properties`)
    stack: list[tuple[Any, str, tuple[str | int, ...], bool]] = [(schema, _ROOT_URI, (), False)]
    # subschemas applied to the same value as their parent ($ref targets, allOf...): a loop never ends
    in_place: dict[int, list[tuple[Any, tuple[str | int, ...]]]] = {}
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
            else:
                in_place.setdefault(id(node), []).append(
                    (registry.resolver(base_uri=base).lookup(ref).contents, (*path, "$ref")))
        in_place.setdefault(id(node), []).extend(_applied_in_place(node, path))
        for key, child in node.items():
            if key not in _DATA_KEYWORDS:
                stack.append((child, base, (*path, key), key in _NAMED_SUBSCHEMAS))
    loop = _loop(schema, in_place)
    if loop is not None:
        yield SchemaProblem("FC117", loop, "this `$ref` loops back to a schema it came from without moving into "
                            "the value (no `properties` or `items` in between): checking would never end",
                            "end the loop: a recursive schema must step into the value, e.g. "
                            "`properties: {children: {items: {$ref: '#'}}}`")


#: Keywords whose subschemas apply to the value itself (not to a part of it).
_IN_PLACE = ("allOf", "anyOf", "oneOf", "not", "if", "then", "else")


def _applied_in_place(node: dict[str, Any], path: tuple[str | int, ...]) -> Iterator[tuple[Any, tuple[str | int, ...]]]:
    for key in _IN_PLACE:
        child = node.get(key)
        if isinstance(child, list):
            yield from ((item, (*path, key, i)) for i, item in enumerate(child))
        elif isinstance(child, dict):
            yield child, (*path, key)


def _loop(schema: Any, in_place: dict[int, list[tuple[Any, tuple[str | int, ...]]]]) -> tuple[str | int, ...] | None:
    """The path of the step that closes a loop of in-place subschemas, or None (iterative DFS)."""
    state: dict[int, int] = {}  # 1: on the current path, 2: done
    for start in [schema, *(child for steps in in_place.values() for child, _ in steps)]:
        if state.get(id(start)) or not isinstance(start, dict):
            continue
        state[id(start)] = 1
        stack = [(start, iter(in_place.get(id(start), [])))]
        while stack:
            node, steps = stack[-1]
            step = next(steps, None)
            if step is None:
                state[id(node)] = 2
                stack.pop()
                continue
            child, where = step
            if not isinstance(child, dict):
                continue
            if state.get(id(child)) == 1:
                return where
            if not state.get(id(child)):
                state[id(child)] = 1
                stack.append((child, iter(in_place.get(id(child), []))))
    return None


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


_cache: OrderedDict[tuple[str, str], Any] = OrderedDict()
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


def _compile(schema: Any) -> Any:
    if not isinstance(schema, dict | bool) or schema_problems(schema):
        return None
    return ContractValidator(schema)


def _first_violation(validator: Any, value: Any) -> Violation | None:
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

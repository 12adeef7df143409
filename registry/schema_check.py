"""Stage 2: check every entry file and entry against the JSON Schemas in ``schemas/``.

The schemas are loaded with :mod:`importlib.resources` (they ship inside the wheel)
and compiled into validators once per process. The file envelope and each entry
are validated separately so that an entry is checked against the schema of its own
kind (clearer errors than a big ``if/then`` dispatch), and every jsonschema error
is turned into a :class:`Diagnostic` at the line and column of the offending value.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import json
from collections.abc import Iterator
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from registry import bounds, entry_values
from registry.contracts import schema_problems
from registry.diagnostics import Diagnostic, json_path
from registry.sandbox_limits import check_limits
from registry.schedule_spec import SCHEDULE_KIND, check_schedule
from registry.yamlfile import JsonPath, YamlDocument

#: Every entry kind, in the order the docs list them.
KINDS = ("temporal.client", "temporal.worker", "workflow.lua", "function.lua", "function.python",
         "library.lua", "temporal.schedule")
#: File names of the schemas shipped in the ``schemas`` package.
FILE_SCHEMA = "entry-file.schema.json"
ENTRY_SCHEMA = "entry.schema.json"
COMMON_SCHEMA = "common.schema.json"


def kind_schema_name(kind: str) -> str:
    return f"{kind}.schema.json"


def schema_names() -> list[str]:
    """Every schema file flowctl ships, by name."""
    return [FILE_SCHEMA, ENTRY_SCHEMA, COMMON_SCHEMA, *(kind_schema_name(k) for k in KINDS)]


@functools.cache
def load_schema(name: str) -> dict[str, Any]:
    """One schema document from the installed ``schemas`` package."""
    text = resources.files("schemas").joinpath(name).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@functools.cache
def _registry() -> Registry:
    # The schemas refer to each other by bare file name (``common.schema.json#/$defs/duration``),
    # which editors resolve next to the file and JSON Schema against the ``$id``; key them both ways.
    resources_ = [(uri, Resource.from_contents(load_schema(name), default_specification=DRAFT202012))
                  for name in schema_names() for uri in {name, load_schema(name).get("$id", name)}]
    return Registry().with_resources(resources_)


@functools.cache
def kind_validator(kind: str) -> Draft202012Validator:
    """The compiled validator of one entry kind (cached: compiling is the slow part)."""
    return Draft202012Validator(load_schema(kind_schema_name(kind)), registry=_registry(),
                                format_checker=bounds.FORMAT_CHECKER)


@functools.cache
def envelope_validator() -> Draft202012Validator:
    """The entry file's own fields; each entry is then checked against its kind's schema."""
    schema = copy.deepcopy(load_schema(FILE_SCHEMA))
    schema["properties"]["entries"]["items"] = {"type": "object"}
    return Draft202012Validator(schema, registry=_registry())


def check_document(doc: YamlDocument) -> list[Diagnostic]:
    """Every schema problem of one parsed entry file."""
    if doc.data is None:
        return []  # stage 1 already reported why
    problems = [_diagnostic(doc, (), err) for err in envelope_validator().iter_errors(doc.data)]
    data = doc.data
    if isinstance(data, dict) and isinstance(data.get("entries"), list):
        for index, item in enumerate(data["entries"]):
            if isinstance(item, dict):
                problems.extend(_check_entry(doc, ("entries", index), item))
    return problems


def _check_entry(doc: YamlDocument, where: JsonPath, item: dict[str, Any]) -> Iterator[Diagnostic]:
    kind = item.get("kind")
    if "kind" not in item:
        yield doc.diagnostic(where, "FC103", "entry has no `kind`",
                             f"add `kind:` with one of: {', '.join(KINDS)}")
        return
    if kind not in KINDS:
        close = difflib.get_close_matches(str(kind), KINDS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        yield doc.diagnostic((*where, "kind"), "FC102", f"unknown entry kind {kind!r}",
                             f"{hint}kinds are: {', '.join(KINDS)}")
        if "name" not in item:
            yield doc.diagnostic(where, "FC103", "entry has no `name`",
                                 "add `name:` (lower-case, e.g. order_workflow)")
        return
    for err in kind_validator(kind).iter_errors(item):
        yield _diagnostic(doc, where, err)
    yield from bounds.check_entry(doc, where, item, load_schema)
    if kind == SCHEDULE_KIND:
        yield from check_schedule(doc, where, item)
    yield from check_limits(doc, where, item)
    yield from entry_values.check_entry(doc, where, item)
    for field_name in ("input_schema", "output_schema"):
        user_schema = item.get(field_name)
        if isinstance(user_schema, dict):
            yield from _check_user_schema(doc, (*where, field_name), user_schema)


def _check_user_schema(doc: YamlDocument, where: JsonPath, schema: dict[str, Any]) -> Iterator[Diagnostic]:
    """FC110/FC117/FC118/FC119: a contract the runner could not enforce (registry.contracts)."""
    for problem in schema_problems(schema):
        inside = () if problem.code == "FC118" else problem.path  # FC118: at the schema, not 64 levels down
        yield doc.diagnostic((*where, *inside), problem.code, problem.message, problem.hint)


def _field(path: JsonPath) -> str:
    names = [p for p in path if isinstance(p, str)]
    return f"`{names[-1]}`" if names else "the file"


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


_TYPE_WORDS = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
               "number": "a number", "boolean": "true or false", "null": "null"}


def _alternatives(doc: YamlDocument, base: JsonPath, path: JsonPath, err: ValidationError) -> Diagnostic:
    """An ``anyOf``/``oneOf`` failure: the complaint of the branch of the value's own type, at its path."""
    context = err.context or []
    mistyped = [e for e in context if e.validator == "type" and not e.relative_path]
    if len(mistyped) == len(context):  # no branch takes this type: name them all
        words = " or ".join(dict.fromkeys(_TYPE_WORDS.get(str(t), str(t)) for e in mistyped
                                          for t in (e.validator_value if isinstance(e.validator_value, list)
                                                    else [e.validator_value])))
        description = err.schema.get("description", "") if isinstance(err.schema, dict) else ""
        return doc.diagnostic(path, "FC104", f"{_field(path)} must be {words}, got {_describe(err.instance)}",
                              f"write {words} here" + (f" ({description})" if description else ""))
    return _diagnostic(doc, base, best_match([e for e in context if all(e is not m for m in mistyped)]))


def _diagnostic(doc: YamlDocument, base: JsonPath, err: ValidationError) -> Diagnostic:
    """Translate one jsonschema error into a located, coded diagnostic with a fix hint."""
    path: JsonPath = (*base, *err.absolute_path)
    field_name = _field(path)
    schema = err.schema if isinstance(err.schema, dict) else {}
    description = schema.get("description", "")
    title = schema.get("title", "")

    bound = bounds.schema_diagnostic(doc, base, err)
    if bound is not None:
        return bound
    if title == "duration":
        return doc.diagnostic(path, "FC107", f"{field_name}: {err.instance!r} is not a duration",
                              "write e.g. 250ms, 5s, 10m, 1h30m, 2d, or an integer of milliseconds")
    if err.validator in ("anyOf", "oneOf") and err.context:
        return _alternatives(doc, base, path, err)
    if err.validator == "required":
        missing = err.message.split("'")[1] if "'" in err.message else str(err.validator_value)
        sub = (*path, missing)
        child = schema.get("properties", {}).get(missing, {})
        what = f" ({child['description']})" if isinstance(child, dict) and child.get("description") else ""
        found = doc.diagnostic(path, "FC103", f"missing required field `{missing}` in {field_name}",
                               f"add `{missing}:`{what}")
        return dataclasses.replace(found, path=json_path(sub))
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        known = list(schema.get("properties", {}))
        extras = [k for k in err.instance if k not in known]
        key = extras[0] if extras else "?"
        close = difflib.get_close_matches(str(key), known, n=1)
        hint = f"did you mean `{close[0]}`?" if close else f"known fields: {', '.join(known)}"
        return doc.diagnostic((*path, str(key)), "FC105", f"unknown field `{key}` in {field_name}", hint,
                              at_key=True)
    validator_value: Any = err.validator_value  # typed loosely by jsonschema's stubs
    if err.validator == "type":
        expected = validator_value if isinstance(validator_value, list) else [validator_value]
        words = " or ".join(_TYPE_WORDS.get(str(t), str(t)) for t in expected)
        return doc.diagnostic(path, "FC104", f"{field_name} must be {words}, got {_describe(err.instance)}",
                              f"write {words} here" + (f" ({description})" if description else ""))
    if err.validator in ("enum", "const"):
        allowed: list[Any] = validator_value if err.validator == "enum" else [validator_value]
        close = difflib.get_close_matches(str(err.instance), [str(a) for a in allowed], n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return doc.diagnostic(path, "FC106", f"{field_name}: {err.instance!r} is not allowed",
                              f"{hint}allowed: {', '.join(repr(a) for a in allowed)}")
    if err.validator == "pattern":
        if title == "string with ${env:...}":
            nested = " (a default cannot hold another ${env:…})" if ":-${" in str(err.instance) else ""
            return doc.diagnostic(path, "FC109", f"{field_name}: malformed environment reference in "
                                  f"{err.instance!r}{nested}", "write ${env:NAME} or ${env:NAME:-default}")
        if title == "import alias":
            return doc.diagnostic((*path, str(err.instance)), "FC108",
                                  f"{field_name}: {err.instance!r} is not a valid import alias",
                                  description, at_key=True)
        if title in ("name", "entry reference", "Lua identifier", "method") or "Lua name" in description:
            return doc.diagnostic(path, "FC108",
                                  f"{field_name}: {err.instance!r} is not a valid {title or 'name'}",
                                  description or "use letters, digits and '_'")
        return doc.diagnostic(path, "FC101", f"{field_name}: {err.instance!r} has the wrong format",
                              description or f"it must match {err.validator_value}")
    return doc.diagnostic(path, "FC101", f"{field_name}: {err.message}", description or "see docs/entries.md")

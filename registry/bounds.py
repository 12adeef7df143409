"""Values the schemas accept are values Temporal accepts: ranges, finite numbers, retry policies, secrets.

The JSON Schemas carry the bounds (``maximum``, and two formats checked here:
``flowctl-duration`` — at most :data:`registry.durations.MAX_DURATION_MS` — and
``flowctl-finite`` — no NaN or infinity); :func:`schema_diagnostic` turns their
violations into FC120–FC122 and a literal in a secret field into FC124.
:func:`check_entry` adds what a schema cannot say: a retry policy Temporal would refuse
(FC123), an activity left without any timeout (FC126) and a ``${env:NAME:-default}``
default in a secret field (FC125, a warning: the default is stored and shown).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from jsonschema import FormatChecker
from jsonschema.exceptions import ValidationError

from registry.diagnostics import Diagnostic, Severity
from registry.durations import MAX_DURATION_TEXT, duration_ms, parse_duration
from registry.errors import FlowError
from registry.yamlfile import JsonPath, YamlDocument

__all__ = ["FORMAT_CHECKER", "SECRET_TITLE", "check_entry", "schema_diagnostic", "secret_paths"]

#: The title of the secret string definition in common.schema.json.
SECRET_TITLE = "secret"
#: Temporal's default initial retry interval (used when a policy leaves it out or sets 0).
_DEFAULT_INITIAL_MS = 1000.0
_ENV_DEFAULT = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*):-")
_SECRET_REF = "#/$defs/secret"
_INT64 = (-(2**63), 2**63 - 1)

FORMAT_CHECKER = FormatChecker(formats=())


@FORMAT_CHECKER.checks("flowctl-duration", raises=FlowError)
def _duration_in_range(instance: object) -> bool:
    """Strings and numbers (JSON Schema counts ``1e13`` and ``5.0`` as integers) get the range check."""
    if isinstance(instance, bool) or not isinstance(instance, str | int | float):
        return True
    try:
        duration_ms(instance)
    except FlowError as exc:
        return "out of range" not in exc.message  # malformed ones are the pattern's (FC107)
    return True


@FORMAT_CHECKER.checks("flowctl-finite")
def _finite(instance: object) -> bool:
    return not isinstance(instance, float) or math.isfinite(instance)


def schema_diagnostic(doc: YamlDocument, base: JsonPath, err: ValidationError) -> Diagnostic | None:
    """The FC12x diagnostic for a bound the schema states, or None when ``err`` is about something else.

    ``base`` is the path of the instance that was validated. A bound broken inside one branch of an
    ``anyOf`` (``interval: {every: …}`` or a list of them) is reported as such, not as the other branch.
    """
    if err.validator in ("anyOf", "oneOf"):
        inner = next((sub for sub in _descendants(err) if _is_bound(sub)), None)
        return schema_diagnostic(doc, base, inner) if inner is not None else None
    path: JsonPath = (*base, *err.absolute_path)
    schema = err.schema if isinstance(err.schema, dict) else {}
    names = [p for p in path if isinstance(p, str)]
    field = f"`{names[-1]}`" if names else "the value"
    if err.validator == "format" and err.validator_value == "flowctl-duration":
        return doc.diagnostic(path, "FC120", f"{field}: {_shown(err.instance)} is out of range: a duration is "
                              f"at most {MAX_DURATION_TEXT}",
                              f"write a duration from 0 to {MAX_DURATION_TEXT} (Temporal cannot hold longer ones)")
    if isinstance(err.instance, float) and not math.isfinite(err.instance):
        return doc.diagnostic(path, "FC122", f"{field}: {err.instance!r} is not a finite number",
                              f"write a number {_range(schema)}")
    if err.validator in ("maximum", "exclusiveMaximum"):
        return doc.diagnostic(path, "FC121", f"{field}: {_shown(err.instance)} is out of range {_range(schema)}",
                              f"write a value {_range(schema)}" + _why(schema))
    if err.validator in ("minimum", "exclusiveMinimum") and "maximum" in schema:
        return doc.diagnostic(path, "FC101", f"{field}: {_shown(err.instance)} is out of range {_range(schema)}",
                              f"write a value {_range(schema)}" + _why(schema))
    if err.validator == "pattern" and schema.get("title") == SECRET_TITLE:
        return doc.diagnostic(path, "FC124", f"{field} holds a literal secret (it would be stored in the "
                              "registry and shown by diff and registry show)",
                              "write only a reference to an environment variable the worker has, e.g. "
                              "${env:TEMPORAL_API_KEY}")
    return None


def _descendants(err: ValidationError) -> Iterator[ValidationError]:
    for sub in err.context or []:
        yield sub
        yield from _descendants(sub)


def _is_bound(err: ValidationError) -> bool:
    if err.validator == "format" and err.validator_value in ("flowctl-duration", "flowctl-finite"):
        return True
    if err.validator in ("maximum", "exclusiveMaximum"):
        return True
    schema = err.schema if isinstance(err.schema, dict) else {}
    return err.validator == "pattern" and schema.get("title") == SECRET_TITLE


def _range(schema: Mapping[str, Any]) -> str:
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and high is not None:
        return f"from {low} to {high}"
    if high is not None:
        return f"up to {high}"
    return f"of at least {low}" if low is not None else "(no NaN or infinity)"


def _why(schema: Mapping[str, Any]) -> str:
    description = str(schema.get("description", ""))
    return f" ({description})" if description else ""


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_entry(doc: YamlDocument, where: JsonPath, item: Mapping[str, Any],
                load: Callable[[str], dict[str, Any]]) -> Iterator[Diagnostic]:
    """What the schema cannot say about one (schema-checked) entry; ``load`` reads a schema by file name."""
    options = item.get("options")
    if isinstance(options, Mapping):
        for key in ("retry_policy", "temporal.workflow.retry_policy"):
            policy = options.get(key)
            if isinstance(policy, Mapping):
                yield from _retry_policy(doc, (*where, "options", key), policy)
        if item.get("kind") in ("function.lua", "function.python"):
            yield from _timeouts(doc, (*where, "options"), options)
        yield from _search_attributes(doc, (*where, "options", "temporal.workflow.search_attributes"),
                                      options.get("temporal.workflow.search_attributes"))
    yield from _search_attributes(doc, (*where, "search_attributes"), item.get("search_attributes"))
    kind = item.get("kind")
    if kind == "temporal.client":
        yield from _pem_in_paths(doc, where, item)
    if isinstance(kind, str):
        for secret in secret_paths(f"{kind}.schema.json", load):
            value: Any = item
            for step in secret:
                value = value.get(step) if isinstance(value, Mapping) else None
            if isinstance(value, str) and (found := _ENV_DEFAULT.search(value)):
                yield doc.diagnostic((*where, *secret), "FC125", f"`{secret[-1]}` has a default "
                                     f"(${{env:{found.group(1)}:-…}}): the default is a secret written in the "
                                     "entry, stored in the registry and shown by diff",
                                     f"write ${{env:{found.group(1)}}} and set the variable where the worker "
                                     "runs", severity=Severity.WARNING)


#: A client's fields that name PEM files: a path is fine, the file's contents never belong in an entry.
PEM_PATH_FIELDS = (("tls", "server_ca_cert"), ("auth", "client_cert"), ("auth", "client_key"))


def _pem_in_paths(doc: YamlDocument, where: JsonPath, client: Mapping[str, Any]) -> Iterator[Diagnostic]:
    """FC124: PEM text pasted where a file path belongs (a private key would be stored and shown)."""
    for section, field in PEM_PATH_FIELDS:
        block = client.get(section)
        value = block.get(field) if isinstance(block, Mapping) else None
        if isinstance(value, str) and "-----BEGIN" in value:
            yield doc.diagnostic((*where, section, field), "FC124", f"`{field}` holds PEM text, not a file path "
                                 "(a certificate or private key written in the entry is stored in the registry and "
                                 "shown by diff and registry show)",
                                 f"save it to a file the worker can read and write its path, e.g. {field}: "
                                 "${env:TEMPORAL_" + field.upper() + "_FILE}")


def _millis(value: Any) -> float | None:
    """The milliseconds the worker will use (a timedelta: whole microseconds, so ``0.0001ms`` is 0)."""
    try:
        return parse_duration(value).total_seconds() * 1000 if value is not None else None
    except FlowError:
        return None  # the schema stage reported it


def _retry_policy(doc: YamlDocument, where: JsonPath, policy: Mapping[str, Any]) -> Iterator[Diagnostic]:
    if policy.get("maximum_attempts") == 1:
        return  # no retries: Temporal ignores the rest
    initial = _millis(policy.get("initial_interval")) or _DEFAULT_INITIAL_MS
    maximum = _millis(policy.get("maximum_interval"))
    if maximum and maximum < initial:
        said = "initial_interval" if policy.get("initial_interval") else "the default initial_interval (1s)"
        yield doc.diagnostic((*where, "maximum_interval"), "FC123",
                             f"`maximum_interval` ({policy['maximum_interval']!r}) is shorter than {said}: "
                             "Temporal refuses this retry policy",
                             "make maximum_interval at least initial_interval (or leave it out: 100 x "
                             "initial_interval)")


def _search_attributes(doc: YamlDocument, where: JsonPath, values: Any) -> Iterator[Diagnostic]:
    """Temporal keeps Int search attributes in 64 bits and Double ones finite."""
    if not isinstance(values, Mapping):
        return
    for name, value in values.items():
        if isinstance(value, float) and not math.isfinite(value):
            yield doc.diagnostic((*where, str(name)), "FC122", f"search attribute `{name}`: {value!r} is not a "
                                 "finite number", "write a finite number (Temporal's Double)")
        elif isinstance(value, int) and not isinstance(value, bool) and not _INT64[0] <= value <= _INT64[1]:
            yield doc.diagnostic((*where, str(name)), "FC121", f"search attribute `{name}`: {_shown(value)} is "
                                 f"out of range from {_INT64[0]} to {_INT64[1]}",
                                 "write a 64-bit integer (Temporal's Int), or a string (Keyword)")


def _timeouts(doc: YamlDocument, where: JsonPath, options: Mapping[str, Any]) -> Iterator[Diagnostic]:
    if "start_to_close_timeout" in options and _millis(options["start_to_close_timeout"]) == 0 \
            and not _millis(options.get("schedule_to_close_timeout")):
        yield doc.diagnostic((*where, "start_to_close_timeout"), "FC126",
                             "`start_to_close_timeout` is 0 and there is no schedule_to_close_timeout: "
                             "the activity would have no timeout, which Temporal refuses",
                             "give a positive start_to_close_timeout (default 10m) or a "
                             "schedule_to_close_timeout")


def secret_paths(schema_name: str, load: Callable[[str], dict[str, Any]]) -> tuple[tuple[str, ...], ...]:
    """The property paths a kind's schema marks secret (a ``$ref`` to common.schema.json#/$defs/secret)."""
    return _secret_paths(schema_name, load)


@functools.cache
def _secret_paths(schema_name: str, load: Callable[[str], dict[str, Any]]) -> tuple[tuple[str, ...], ...]:
    found: list[tuple[str, ...]] = []

    def walk(node: Any, file: str, path: tuple[str, ...], depth: int) -> None:
        if not isinstance(node, Mapping) or depth > 12:
            return
        ref = node.get("$ref")
        if isinstance(ref, str):
            target_file, _, pointer = ref.partition("#")
            target_file = target_file or file
            if f"#{pointer}" == _SECRET_REF:
                found.append(path)
                return
            target: Any = load(target_file)
            for part in pointer.strip("/").split("/") if pointer.strip("/") else []:
                target = target.get(part, {}) if isinstance(target, Mapping) else {}
            walk(target, target_file, path, depth + 1)
        for key, sub in (node.get("properties") or {}).items():
            walk(sub, file, (*path, key), depth + 1)
        for combinator in ("anyOf", "oneOf", "allOf"):
            for sub in node.get(combinator) or []:
                walk(sub, file, path, depth + 1)

    walk(load(schema_name), schema_name, (), 0)
    return tuple(dict.fromkeys(found))

"""Entry values the schemas accept but flowctl would silently misread (stage 2, FC130–FC131).

- FC130: a ``${env:…}`` reference where nothing resolves it. Only a ``temporal.client``'s
  ``address``, ``namespace``, ``identity``, ``tls`` and ``auth`` are resolved (when a worker
  connects); anywhere else the text would reach Temporal or Lua literally (a worker's
  ``task_queue: ${env:QUEUE}`` would poll a queue named ``${env:QUEUE}``).
- FC131: an import alias that YAML reads as another type than a string (``imports: {1: lib}``,
  ``{true: lib}``): ``require`` takes a string, and the alias would be stored as its text.

Free text is left alone: Lua ``source`` code, ``description``, a schedule's ``input`` and the
JSON Schemas (they may well hold a literal ``${env:…}``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from registry.diagnostics import Diagnostic, json_path
from registry.yamlfile import JsonPath, YamlDocument

__all__ = ["ENV_RESOLVED", "check_entry"]

#: The fields of a ``temporal.client`` entry whose ``${env:…}`` references a worker resolves.
ENV_RESOLVED = ("address", "namespace", "identity", "tls", "auth")
#: Top-level fields holding free text or user data, never read as flowctl settings.
_FREE_TEXT = frozenset({"source", "description", "input", "input_schema", "output_schema"})
_ENV_START = "${env:"


def check_entry(doc: YamlDocument, where: JsonPath, item: Mapping[str, Any]) -> Iterator[Diagnostic]:
    """FC130 and FC131 for one entry (``where``: its JSON path in the file)."""
    kind = item.get("kind")
    resolved = ENV_RESOLVED if kind == "temporal.client" else ()
    for key, value in item.items():
        if key in _FREE_TEXT or key in resolved:
            continue
        for path in _env_strings(value, (key,)):
            yield doc.diagnostic(
                (*where, *path), "FC130", f"`{json_path(path)}`: a ${{env:…}} reference is never resolved "
                "here (it would stay literal text)",
                "write the value itself; ${env:NAME} is resolved only in a temporal.client's "
                + ", ".join(ENV_RESOLVED))
    imports = item.get("imports")
    if isinstance(imports, Mapping):
        for alias in imports:
            if not isinstance(alias, str):
                yield doc.diagnostic(
                    (*where, "imports", str(alias)), "FC131",
                    f"import alias {alias!r} is not a string (YAML reads it as {type(alias).__name__})",
                    "write the alias as a Lua name (letters, digits and `_`, not starting with a digit), "
                    "e.g. `pricing: app:pricing`", at_key=True)


def _env_strings(value: Any, path: JsonPath) -> Iterator[JsonPath]:
    """The paths of every string holding ``${env:`` under ``value`` (an explicit stack: no recursion)."""
    stack: list[tuple[Any, JsonPath]] = [(value, path)]
    while stack:
        node, at = stack.pop()
        if isinstance(node, str):
            if _ENV_START in node:
                yield at
        elif isinstance(node, Mapping):
            stack.extend((child, (*at, str(k))) for k, child in reversed(list(node.items())))
        elif isinstance(node, list):
            stack.extend((child, (*at, i)) for i, child in reversed(list(enumerate(node))))

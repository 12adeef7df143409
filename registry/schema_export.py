"""``flowctl schema export DIR``: write the shipped JSON Schemas where editors can find them.

The schemas refer to each other by bare file name (``common.schema.json#/$defs/…``),
so they are written side by side under their own names; point yaml-language-server
at ``DIR/entry-file.schema.json`` (see docs/entries.md and docs/editors.md). ``DIR/catalog.json``
lists the entry file schema in SchemaStore's catalog format, matched to ``**/entries/*.yaml``.
Each schema's ``$id`` is a stable name (``https://flowctl.dev/schemas/NAME``), never fetched.
"""

from __future__ import annotations

import json
from pathlib import Path

from registry.errors import FlowError
from registry.schema_check import FILE_SCHEMA, load_schema, schema_names

__all__ = ["CATALOG", "FILE_MATCH", "FILE_SCHEMA", "catalog", "export_schemas"]

#: The catalog file written beside the schemas.
CATALOG = "catalog.json"
#: Which files editors should check against the entry file schema.
FILE_MATCH = ("**/entries/*.yaml", "**/entries/*.yml", "**/entries/**/*.yaml", "**/entries/**/*.yml")


def catalog() -> dict[str, object]:
    """The SchemaStore catalog (https://json.schemastore.org/schema-catalog.json) of the exported schemas;
    ``url`` is relative to the catalog, so the exported directory can move."""
    schema = load_schema(FILE_SCHEMA)
    return {"$schema": "https://json.schemastore.org/schema-catalog.json", "version": 1,
            "schemas": [{"name": schema["title"], "description": schema["description"], "fileMatch": list(FILE_MATCH),
                         "url": FILE_SCHEMA}]}


def export_schemas(directory: Path) -> list[Path]:
    """Write every schema into ``directory`` (created if needed); return the files written."""
    if directory.exists() and not directory.is_dir():
        raise FlowError(f"{directory} exists and is not a directory",
                        hint="pass a directory to write the schemas into, e.g. .flowctl/schemas")
    written = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name in schema_names():
            target = directory / name
            target.write_text(json.dumps(load_schema(name), indent=2, ensure_ascii=False) + "\n",
                              encoding="utf-8")
            written.append(target)
        target = directory / CATALOG
        target.write_text(json.dumps(catalog(), indent=2) + "\n", encoding="utf-8")
        written.append(target)
    except OSError as exc:
        raise FlowError(f"cannot write the schemas to {directory}: {exc.strerror or exc}",
                        hint="check that the directory is writable") from exc
    return written

"""``flowctl schema export DIR``: write the shipped JSON Schemas where editors can find them.

The schemas refer to each other by bare file name (``common.schema.json#/$defs/…``),
so they are written side by side under their own names; point yaml-language-server
at ``DIR/entry-file.schema.json`` (see docs/entries.md).
"""

from __future__ import annotations

import json
from pathlib import Path

from registry.errors import FlowError
from registry.schema_check import FILE_SCHEMA, load_schema, schema_names

__all__ = ["FILE_SCHEMA", "export_schemas"]


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
    except OSError as exc:
        raise FlowError(f"cannot write the schemas to {directory}: {exc.strerror or exc}",
                        hint="check that the directory is writable") from exc
    return written

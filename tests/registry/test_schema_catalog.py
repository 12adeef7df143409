"""Schemas for editors: a stable ``$id`` and a ``title`` on every schema, and the SchemaStore catalog
``flowctl schema export`` writes beside them."""

from __future__ import annotations

import json
from pathlib import Path

from registry.schema_check import load_schema, schema_names
from registry.schema_export import export_schemas


def test_every_schema_has_a_stable_id_and_a_title() -> None:
    for name in schema_names():
        schema = load_schema(name)
        assert schema["$id"] == f"https://flowctl.dev/schemas/{name}", name
        assert isinstance(schema.get("title"), str) and schema["title"], name


def test_export_writes_a_catalog_matching_entry_files(tmp_path: Path) -> None:
    written = export_schemas(tmp_path)
    assert tmp_path / "catalog.json" in written
    catalog = json.loads((tmp_path / "catalog.json").read_text())
    assert catalog["$schema"] == "https://json.schemastore.org/schema-catalog.json" and catalog["version"] == 1
    (entry,) = catalog["schemas"]
    assert set(entry) == {"name", "description", "fileMatch", "url"}
    assert "**/entries/*.yaml" in entry["fileMatch"]
    assert (tmp_path / entry["url"]).is_file()  # relative to the catalog
    assert json.loads((tmp_path / entry["url"]).read_text())["$id"].endswith("/entry-file.schema.json")

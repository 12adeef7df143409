"""YAML blocks in docs/*.md that show entries parse, and their entries pass their kind's schema.

A reader copies these examples; one that is not even YAML (a flow mapping holding ``${env:…}``
unquoted, as the mTLS example once did) fails with FC004 on first use. Examples may leave out
fields that do not matter to them (a snippet without ``meta``), so only missing fields are allowed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from registry.schema_check import KINDS, kind_validator
from tests.support.paths import REPO

BLOCK_RE = re.compile(r"^```ya?ml\n(.*?)^```", re.DOTALL | re.MULTILINE)
ENTRY_RE = re.compile(r"^\s*-?\s*kind:", re.MULTILINE)


def _entry_blocks() -> list[Any]:
    found = []
    for doc in sorted((REPO / "docs").glob("*.md")):
        text = doc.read_text(encoding="utf-8")
        for match in BLOCK_RE.finditer(text):
            if ENTRY_RE.search(match.group(1)):
                line = text.count("\n", 0, match.start()) + 1
                found.append(pytest.param(doc, match.group(1), id=f"{doc.name}:{line}"))
    return found


def _entries(data: Any) -> list[dict[str, Any]]:
    items = data.get("entries") if isinstance(data, dict) and "entries" in data else data
    items = items if isinstance(items, list) else [items]
    return [item for item in items if isinstance(item, dict) and item.get("kind") in KINDS]


BLOCKS = _entry_blocks()


def test_the_docs_have_entry_examples() -> None:
    assert len(BLOCKS) >= 3
    assert any(param.values[0].name == "operations.md" for param in BLOCKS)


@pytest.mark.parametrize(("doc", "block"), BLOCKS)
def test_entry_example_parses_and_matches_its_schema(doc: Path, block: str) -> None:
    data = yaml.safe_load(block)  # a YAMLError fails the test with the position
    for entry in _entries(data):
        problems = [e.message for e in kind_validator(entry["kind"]).iter_errors(entry) if e.validator != "required"]
        assert problems == [], f"{doc.name}: {entry.get('name')}: {problems}"


def test_the_mtls_example_is_a_valid_client() -> None:
    text = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    block = next(m.group(1) for m in BLOCK_RE.finditer(text) if "type: mtls" in m.group(1))
    mtls = next(e for e in _entries(yaml.safe_load(block)) if e["name"] == "mtls")
    assert mtls["tls"] == {"server_ca_cert": "${env:CA_FILE}"}
    assert mtls["auth"] == {"type": "mtls", "client_cert": "${env:CERT_FILE}", "client_key": "${env:KEY_FILE}"}
    assert list(kind_validator("temporal.client").iter_errors(mtls)) == []

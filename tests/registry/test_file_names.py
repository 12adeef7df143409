"""File names flowctl did not expect: the machine-readable output stays valid UTF-8 JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

import cli
from registry.diagnostics import printable


def test_a_non_utf8_file_name_is_escaped_in_json_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    entries = tmp_path / "entries"
    entries.mkdir()
    bad = os.path.join(os.fsencode(entries), b"caf\xe9.yaml")  # Latin-1, not UTF-8
    with open(bad, "wb") as handle:
        handle.write(b'version: "1.0"\nnamespace: app\nentries: [{name: c, kind: temporal.client, bogus: 1}]\n')
    result = CliRunner().invoke(cli.main, ["validate", "--format", "json", "entries"])
    assert result.exit_code == 1
    body = json.loads(result.stdout_bytes.decode("utf-8"))  # strict UTF-8: raises on a raw 0xe9 byte
    [found] = body["diagnostics"]
    assert found["file"] == "entries/caf\\xe9.yaml" and found["code"] == "FC105"


def test_printable_keeps_text_and_escapes_only_undecodable_bytes() -> None:
    assert printable("entries/app.yaml") == "entries/app.yaml"
    assert printable("entries/café.yaml") == "entries/café.yaml"
    assert printable(os.fsdecode(b"caf\xe9.yaml")) == "caf\\xe9.yaml"
    assert printable("lone \ud800 surrogate") == "lone \\ud800 surrogate"

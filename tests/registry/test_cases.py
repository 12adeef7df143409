"""Data-driven validation cases: tests/cases/valid/* must pass, tests/cases/invalid/* must fail as stated.

Each invalid case directory holds its entry files and ``expected.txt``:
``CODE FILE:LINE [strict]`` — the diagnostic code, and the file (relative to the case)
and line it must be reported at; ``strict`` marks cases that only fail with --strict
(warnings).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from registry.diagnostics import Diagnostic
from registry.validate import validate_project
from tests.support.paths import EXAMPLES

CASES = Path(__file__).resolve().parent.parent / "cases"
VALID = sorted(p for p in (CASES / "valid").iterdir() if p.is_dir())
INVALID = sorted(p for p in (CASES / "invalid").iterdir() if p.is_dir())


def _expectation(case: Path) -> tuple[str, Path, int, bool]:
    code, where, *flags = (case / "expected.txt").read_text().split()
    file, line = where.rsplit(":", 1)
    return code, (case / file).resolve(), int(line), "strict" in flags


def _describe(diagnostics: list[Diagnostic]) -> str:
    return "\n".join(f"{d.location()} {d.code} {d.message}" for d in diagnostics)


def test_there_are_enough_cases() -> None:
    assert len(INVALID) >= 200, "the invalid-case corpus (issue 12: at least 200, each with its exact code and line)"
    codes = {_expectation(case)[0] for case in INVALID}
    stages = {code[:3] for code in codes}
    assert {"FC0", "FC1", "FC2", "FC3", "FC4"} <= stages


@pytest.mark.parametrize("case", VALID, ids=[p.name for p in VALID])
def test_valid_case(case: Path) -> None:
    report = validate_project([case], strict=True, cache_dir=None)
    assert report.ok, _describe(report.diagnostics)
    assert not report.diagnostics, _describe(report.diagnostics)


@pytest.mark.parametrize("case", INVALID, ids=[p.name for p in INVALID])
def test_invalid_case(case: Path) -> None:
    code, file, line, strict = _expectation(case)
    report = validate_project([case], strict=strict, cache_dir=None)
    assert not report.ok
    if not strict:
        assert report.errors, "expected an error, got only warnings"
    found = [d for d in report.diagnostics if d.code == code]
    assert found, f"no {code}; got:\n{_describe(report.diagnostics)}"
    located = [d for d in found if Path(d.file).resolve() == file and d.line == line]
    assert located, f"{code} not at {file.name}:{line}; got:\n{_describe(report.diagnostics)}"
    for d in report.diagnostics:
        assert d.line >= 1 and d.col >= 1 and d.message and d.hint, d


def test_the_example_project_validates_strictly() -> None:
    entries = EXAMPLES
    report = validate_project([entries], strict=True, cache_dir=None)
    assert report.ok and not report.diagnostics, _describe(report.diagnostics)
    assert len(report.project.entries) >= 9


def test_fifty_megabyte_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as out:
        out.write(b'version: "1.0"\nnamespace: app\nentries:\n')
        chunk = b"  - {name: client, kind: temporal.client}\n" * 25_000
        while out.tell() < 50 * 1024 * 1024:
            out.write(chunk)
    report = validate_project([tmp_path], cache_dir=None)
    assert [(d.code, d.line) for d in report.diagnostics] == [("FC002", 1)]
    assert not report.ok

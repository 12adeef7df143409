"""Every diagnostic code emitted anywhere in registry/ is documented in docs/diagnostics.md, and vice versa."""

from __future__ import annotations

import re

from tests.support.paths import REPO

ROOT = REPO
CODE_RE = re.compile(r"\bFC\d{3}\b")


def test_every_emitted_code_is_documented() -> None:
    emitted = {code for path in (ROOT / "registry").rglob("*.py")
               for code in re.findall(r"[\"'](FC\d{3})[\"']", path.read_text(encoding="utf-8"))}
    documented = set(re.findall(r"^\| (FC\d{3}) \|", (ROOT / "docs" / "diagnostics.md").read_text(),
                                re.MULTILINE))
    assert emitted, "no codes found: the pattern is wrong"
    assert emitted - documented == set(), "undocumented codes"
    assert documented - emitted == set(), "documented codes nothing emits"


def test_every_case_code_is_documented() -> None:
    documented = set(CODE_RE.findall((ROOT / "docs" / "diagnostics.md").read_text()))
    cases = {CODE_RE.findall(p.read_text())[0] for p in (ROOT / "tests" / "cases" / "invalid").glob("*/expected.txt")}
    assert cases <= documented

"""Reporters for ``flowctl test``: pytest-like text, JSON, and JUnit XML (for CI test tabs)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree

from registry.diagnostics import display_path
from runner.testing.session import Outcome

__all__ = ["TestReport", "render", "render_failures", "render_json", "render_junit", "render_summary"]


@dataclass
class TestReport:
    """Every outcome of a run, in order, plus how many tests ``-k`` deselected."""

    __test__ = False  # not a pytest test class

    outcomes: list[Outcome] = field(default_factory=list)
    deselected: int = 0
    duration: float = 0.0

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.passed]

    @property
    def ok(self) -> bool:
        return bool(self.outcomes) and not self.failed

    def counts(self) -> dict[str, int]:
        passed = sum(1 for o in self.outcomes if o.passed)
        return {"passed": passed, "failed": len(self.outcomes) - passed, "deselected": self.deselected}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (``flowctl test --format json``)."""
        return {"ok": self.ok, "counts": self.counts(), "duration": round(self.duration, 3),
                "tests": [o.to_dict() for o in self.outcomes]}


def render(report: TestReport, fmt: str) -> str:
    """The report as ``flowctl test --format`` prints it: text (failures, then the summary), json or junit."""
    if fmt == "text":
        return render_failures(report) + render_summary(report)
    if fmt == "json":
        return render_json(report)
    if fmt == "junit":
        return render_junit(report)
    raise ValueError(f"unknown test report format {fmt!r}")


def render_progress(outcome: Outcome, echo: Callable[[str], None], state: dict[str, str]) -> None:
    """``entries/order_workflow_test.lua ..F`` as tests finish (one line per file)."""
    shown = display_path(outcome.test.file)
    if state.get("file") != shown:
        if state.get("file") is not None:
            echo("\n")
        echo(f"{shown} ")
        state["file"] = shown
    echo("." if outcome.passed else "F")


def render_failures(report: TestReport) -> str:
    lines: list[str] = []
    if report.failed:
        lines.append(_banner("FAILURES"))
    for outcome in report.failed:
        lines.append(_banner(outcome.test.display(), "_"))
        where = f"{outcome.where}: " if outcome.where else ""
        lines.append(f"{where}{outcome.message}")
        if outcome.detail:
            lines.append(outcome.detail.rstrip())
        if outcome.output:
            lines.append(_banner("captured output", "-"))
            lines.extend(outcome.output)
    return "\n".join(lines) + ("\n" if lines else "")


def render_summary(report: TestReport) -> str:
    counts = report.counts()
    parts = [f"{counts['failed']} failed"] if counts["failed"] else []
    parts.append(f"{counts['passed']} passed")
    if counts["deselected"]:
        parts.append(f"{counts['deselected']} deselected")
    lines = [f"FAILED {o.test.display()} - {o.message.splitlines()[0] if o.message else ''}" for o in report.failed]
    lines.append(_banner(f"{', '.join(parts)} in {report.duration:.2f}s"))
    return "\n".join(lines) + "\n"


def _banner(title: str, char: str = "=") -> str:
    width = 80
    title = f" {title} "
    side = max(3, (width - len(title)) // 2)
    return f"{char * side}{title}{char * side}"


def render_json(report: TestReport) -> str:
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"


def render_junit(report: TestReport) -> str:
    counts = report.counts()
    suite = ElementTree.Element("testsuite", name="flowctl", tests=str(len(report.outcomes)),
                                failures=str(counts["failed"]), errors="0", skipped="0",
                                time=f"{report.duration:.3f}")
    for outcome in report.outcomes:
        case = ElementTree.SubElement(suite, "testcase", classname=display_path(outcome.test.file),
                                      name=outcome.test.name, time=f"{outcome.duration:.3f}")
        if not outcome.passed:
            where = f"{outcome.where}: " if outcome.where else ""
            failure = ElementTree.SubElement(case, "failure", message=f"{where}{outcome.message}")
            failure.text = outcome.detail
        if outcome.output:
            ElementTree.SubElement(case, "system-out").text = "\n".join(outcome.output)
    suites = ElementTree.Element("testsuites")
    suites.append(suite)
    ElementTree.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ElementTree.tostring(suites, encoding="unicode") + "\n"

"""Where the test data lives."""

from __future__ import annotations

from pathlib import Path

#: the repository root
REPO = Path(__file__).resolve().parents[2]
#: the runner tests' entry projects (``ENTRIES / "basic"``, ...)
ENTRIES = REPO / "tests" / "runner" / "entries"
#: the example project every user sees first (``entries/`` at the top of the repository)
EXAMPLES = REPO / "entries"

"""The reference/003 example projects and their Python activities' call journals.

The reference examples' Python activities live next to their YAML; importing this module puts
those directories on ``sys.path`` so the in-process worker (and the tests, to read the
activities' call journals) import the same modules.
"""

from __future__ import annotations

import importlib
import sys

from tests.support.paths import ENTRIES

REFERENCE = ENTRIES / "reference"
SAGA = ENTRIES / "reference_saga"

for _directory in (REFERENCE, SAGA):
    if str(_directory) not in sys.path:
        sys.path.insert(0, str(_directory))
#: the activity modules the worker imports (by the entries' ``handler``), with their call journals
reference_activities = importlib.import_module("reference_activities")
saga_activities = importlib.import_module("saga_activities")

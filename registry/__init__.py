"""flowctl's registry side: entries, schemas, validation, plans and the revision store.

Knows nothing of temporalio, lupa or click, so it runs in a pre-commit hook quickly.
"""

from registry.diagnostics import Diagnostic, Severity
from registry.errors import ExitCode, FlowError
from registry.loader import Entry, Project, load_project

__all__ = ["Diagnostic", "Entry", "ExitCode", "FlowError", "Project", "Severity", "load_project"]

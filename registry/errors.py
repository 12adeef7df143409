"""The root exception and the process exit codes, in one place."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Exit codes shared by every command (check-jsonschema / terraform conventions)."""

    OK = 0
    #: validation problems, changes pending (``diff``), or a user error
    PROBLEMS = 1
    #: usage error or an internal failure
    USAGE = 2


class FlowError(Exception):
    """Base of every error flowctl reports to a user: a message plus a hint saying what to do."""

    exit_code: ExitCode = ExitCode.PROBLEMS

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\nhint: {self.hint}"
        return self.message

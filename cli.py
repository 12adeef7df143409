"""The flowctl command line: parse options, call one function, render the result and exit code.

Every option can also be set through a ``FLOWCTL_<COMMAND>_<OPTION>`` environment variable
(click's ``auto_envvar_prefix``); the commonly shared ones have short names
(``FLOWCTL_REGISTRY``, ``FLOWCTL_ENTRIES``).

Each command lives in its own section below; keep edits inside your section.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from registry.errors import ExitCode, FlowError

F = TypeVar("F", bound=Callable[..., Any])


def reports_errors(func: F) -> F:
    """Turn FlowError into a message + hint on stderr and its exit code; never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except FlowError as exc:
            click.secho(f"error: {exc.message}", fg="red", err=True)
            if exc.hint:
                click.echo(f"hint: {exc.hint}", err=True)
            sys.exit(int(exc.exit_code))
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit, KeyboardInterrupt):
            raise
        except Exception as exc:  # a bug in flowctl: say so briefly, traceback only on request
            if os.environ.get("FLOWCTL_DEBUG"):
                raise
            click.secho(f"internal error: {type(exc).__name__}: {exc}", fg="red", err=True)
            click.echo("hint: rerun with FLOWCTL_DEBUG=1 for a traceback and report it", err=True)
            sys.exit(int(ExitCode.USAGE))

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"auto_envvar_prefix": "FLOWCTL", "help_option_names": ["-h", "--help"]})
@click.version_option(package_name="flowctl", prog_name="flowctl")
def main() -> None:
    """flowctl: declarative Lua workflows on Temporal.

    validate → diff → apply entries to the registry; worker serves them; dev does it all locally.
    """


# ---------------------------------------------------------------------------
# validate / schema  (issue: Foundation)
# ---------------------------------------------------------------------------


# ---------------------------------------------------------------------------
# diff / apply / registry  (issue: Registry)
# ---------------------------------------------------------------------------


# ---------------------------------------------------------------------------
# worker / dev / run / describe  (issue: Runner core)
# ---------------------------------------------------------------------------


if __name__ == "__main__":  # pragma: no cover
    main()

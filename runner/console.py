"""How a command's outcome reaches the terminal: rendered output on its streams, exit codes, errors.

A ``FlowError`` becomes ``error:`` and ``hint:`` lines and its exit code, a crash an ``internal
error`` line and exit 2, never a traceback (unless ``FLOWCTL_DEBUG`` is set). Output into a
closed pipe (``flowctl registry list | head -1``) ends the command quietly with exit 141, as
SIGPIPE ends other Unix tools (``BROKEN_PIPE_EXIT``). ``cli.py`` imports this module before
any command runs, ``flowctl validate`` included, so it must stay light: click and ``registry``
only, never temporalio.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar

import click

from registry.errors import ExitCode, FlowError
from registry.render import Output, crashed, failed
from registry.sandbox_limits import SizeError, memory_size

__all__ = ["BROKEN_PIPE_EXIT", "Decorator", "FlowCommand", "FlowGroup", "MemorySize", "Seconds", "emit", "finish",
           "options", "run"]

#: The exit status after writing into a closed pipe: 128 + SIGPIPE, what a shell reports for ``yes | head``.
BROKEN_PIPE_EXIT = 141

F = TypeVar("F", bound=Callable[..., Any])
#: A click parameter declaration (``click.option(...)``, ``click.argument(...)``), or several as one.
Decorator = Callable[[F], F]


class FlowCommand(click.Command):
    """A command that reports a FlowError as ``error:`` and ``hint:`` lines and an exit code, never a traceback.

    The exit code is the error's own (``FlowError.exit_code``) unless the command declares
    ``error_exit``: a command whose exit 1 is a finding (``diff``: changes pending; ``test``:
    a test failed) declares ``error_exit=ExitCode.USAGE``, so that no error reads as that finding.
    """

    def __init__(self, *args: Any, error_exit: ExitCode | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.error_exit = error_exit

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FlowError as exc:
            emit(failed(exc))
            sys.exit(int(exc.exit_code if self.error_exit is None else self.error_exit))
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except BrokenPipeError:
            _broken_pipe()
        except Exception as exc:  # a bug in flowctl: say so briefly, traceback only on request
            if os.environ.get("FLOWCTL_DEBUG"):
                raise
            emit(crashed(exc))
            sys.exit(int(ExitCode.USAGE))


class FlowGroup(click.Group):
    """A group whose commands are FlowCommands and whose subgroups are FlowGroups."""

    command_class = FlowCommand
    group_class = type


def _broken_pipe() -> NoReturn:
    """The reader of stdout went away (``| head``): drop what is left to write and exit quietly."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the flush at exit writes nowhere instead of failing again
    except (OSError, ValueError):  # stdout is not a file (a test's capture): nothing buffered to drop
        pass
    sys.exit(BROKEN_PIPE_EXIT)


class Seconds(click.FloatRange):
    """A number of seconds: finite (click's FloatRange lets ``nan`` and ``inf`` through), at most a year."""

    name = "seconds"

    def __init__(self, min: float = 0) -> None:
        super().__init__(min=min, max=365 * 24 * 3600)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        converted = super().convert(value, param, ctx)
        if isinstance(converted, float) and not math.isfinite(converted):
            self.fail(f"{value!r} is not a finite number of seconds", param, ctx)
        return converted


class MemorySize(click.ParamType):
    """A heap size such as ``256MiB`` (or bytes), as entries write ``limits.memory``: the number of bytes."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int):
            return value
        try:
            return memory_size(value)
        except SizeError as exc:
            self.fail(str(exc), param, ctx)


def emit(outputs: Sequence[Output]) -> None:
    """Print rendered output in order, each piece on its stream and in its colour."""
    for out in outputs:
        if out.color is None:
            click.echo(out.text, err=out.err, nl=False)
        else:
            click.secho(out.text.removesuffix("\n"), fg=out.color, err=out.err, nl=out.text.endswith("\n"))


def finish(outputs: Sequence[Output] = (), *, ok: bool) -> NoReturn:
    """End the command: print ``outputs``, then exit 0 when ``ok``, else 1 (problems found)."""
    emit(outputs)
    sys.exit(int(ExitCode.OK if ok else ExitCode.PROBLEMS))


def options(*decorators: Decorator[F]) -> Decorator[F]:
    """Several options as one decorator, in the order ``--help`` lists them."""

    def apply(func: F) -> F:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply


def run(command: click.Command) -> NoReturn:
    """The body of the ``flowctl`` console script: run ``command``, flush, exit without finalizing Python.

    temporalio's native runtime keeps background threads that, rarely, abort the process while
    the interpreter finalizes (``PyGILState_Release``) — after the command itself succeeded.
    Output is flushed and stores are closed by then, so leaving with ``os._exit`` is safe.
    """
    code = 0
    try:
        command()
    except SystemExit as exc:
        if isinstance(exc.code, int):
            code = exc.code
        elif exc.code is not None:
            print(exc.code, file=sys.stderr)
            code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        code = BROKEN_PIPE_EXIT
    os._exit(code)

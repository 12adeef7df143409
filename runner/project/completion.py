"""``flowctl completion bash|zsh|fish`` (click's own shell completion) and entry IDs completed from the registry.

The shell calls ``flowctl`` with ``_FLOWCTL_COMPLETE=<shell>_complete`` on every TAB; entry-ID arguments
then read the current entries of the registry the command line names (``--registry``,
``$FLOWCTL_REGISTRY`` or ``.flowctl/registry.db``), without creating it, and never raise: a missing or
unreadable registry completes nothing. File and directory arguments complete paths (``click.Path``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from click.shell_completion import CompletionItem, get_completion_class

from registry.errors import FlowError

__all__ = ["SHELLS", "completion_script", "entry_ids"]

SHELLS = ("bash", "zsh", "fish")


def completion_script(command: click.Command, shell: str) -> str:
    """The script that turns completion on in ``shell`` (``eval "$(flowctl completion bash)"``)."""
    cls = get_completion_class(shell)
    if cls is None:
        raise FlowError(f"no completion for the shell `{shell}`", hint=f"pick one of {', '.join(SHELLS)}")
    return cls(command, {}, "flowctl", "_FLOWCTL_COMPLETE").source()


def entry_ids(*kinds: str) -> Callable[[click.Context, click.Parameter, str], list[CompletionItem]]:
    """A ``shell_complete`` callback: the registry's entry IDs (of ``kinds`` when given) starting with the text."""

    def complete(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        try:
            from registry.browse import list_entries
            url: Any = ctx.params.get("registry_url")
            found = [r for r in list_entries(url if isinstance(url, str) else None)
                     if r.entry_id.startswith(incomplete) and (not kinds or r.kind in kinds)]
            return [CompletionItem(r.entry_id, help=r.kind) for r in found]
        except Exception:  # completion must never break the shell: no registry, no suggestions
            return []

    return complete

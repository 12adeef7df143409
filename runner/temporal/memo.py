"""Memo keys flowctl writes on the workflows it starts (and reads back when they run)."""

from __future__ import annotations

from collections.abc import Iterable

#: The revision digest a run executes for its whole life (docs/operations.md, Revisions of running workflows).
REVISION_MEMO = "flowctl.revision"
#: Context values for ``ctx.get`` / ``ctx.all`` (``process.with_context``, ``flowctl run --context``).
CONTEXT_MEMO = "flowctl.context"
#: Messages delivered before any signal: start messages (``:with_message``).
MESSAGES_MEMO = "flowctl.messages"
#: ``workflow.continue_as_new`` carries unreceived messages as a last input argument
#: ``{CARRIED_ARG: [...]}`` (an input, not memo: it may be large); the next run takes it off.
CARRIED_ARG = "flowctl.carried_messages"

#: Memo keys with this prefix are flowctl's own: a run trusts them (its revision, its context,
#: the messages it starts with), so no user memo may set one: not ``--option memo=...``, not
#: ``process.with_options{memo = ...}``, not ``workflow.attrs{memo = ...}``, not an entry's options.
RESERVED_PREFIX = "flowctl."


def reserved_keys(keys: Iterable[object]) -> list[str]:
    """The keys of a user memo that only flowctl may set (sorted; empty when there are none)."""
    return sorted(key for key in keys if isinstance(key, str) and key.startswith(RESERVED_PREFIX))


def reserved_refusal(keys: Iterable[object]) -> str | None:
    """Why a user memo with these keys is refused (None: it is not)."""
    taken = reserved_keys(keys)
    if not taken:
        return None
    return (f"memo key{'s' if len(taken) > 1 else ''} {', '.join(repr(k) for k in taken)} "
            f"{'are' if len(taken) > 1 else 'is'} reserved for flowctl (keys starting with {RESERVED_PREFIX!r}); "
            "name your memo keys differently")

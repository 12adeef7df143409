"""Memo keys flowctl writes on the workflows it starts (and reads back when they run)."""

from __future__ import annotations

#: The revision digest a run executes for its whole life (docs/operations.md, Revisions of running workflows).
REVISION_MEMO = "flowctl.revision"
#: Context values for ``ctx.get`` / ``ctx.all`` (``process.with_context``, ``flowctl run --context``).
CONTEXT_MEMO = "flowctl.context"
#: Messages delivered before any signal: start messages (``:with_message``).
MESSAGES_MEMO = "flowctl.messages"
#: ``workflow.continue_as_new`` carries unreceived messages as a last input argument
#: ``{CARRIED_ARG: [...]}`` (an input, not memo: it may be large); the next run takes it off.
CARRIED_ARG = "flowctl.carried_messages"

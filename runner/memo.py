"""Memo keys flowctl writes on the workflows it starts (and reads back when they run)."""

from __future__ import annotations

#: The revision digest a run executes for its whole life (SPEC §4 Pinning).
REVISION_MEMO = "flowctl.revision"
#: Context values for ``ctx.get`` / ``ctx.all`` (``process.with_context``, ``flowctl run --context``).
CONTEXT_MEMO = "flowctl.context"
#: Messages delivered before any signal: start messages (``:with_message``) and those carried
#: over ``workflow.continue_as_new``.
MESSAGES_MEMO = "flowctl.messages"

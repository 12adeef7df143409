"""``flowctl versions ID``: which revisions and ``workflow.version`` branches open runs still use.

Before deleting the old branch of a ``workflow.version(change_id, min, max)`` call (raising
``min``), or retiring a registry, an operator needs to know that no open run still needs
it. This lists the open runs of a workflow entry, grouped by the revision they are pinned
to (memo ``flowctl.revision``) and by the version each recorded per change id (Temporal
patch markers ``change_id@vN``). A run with no marker for a change took ``min``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from temporalio.client import Client

from registry.revision import Revision
from runner.temporal.memo import REVISION_MEMO

__all__ = ["OpenVersions", "open_versions"]

_PATCH = re.compile(r"^(?P<change>.+)@v(?P<version>-?\d+)$")
#: More open runs than this are counted from the first ones only (the output says so).
MAX_RUNS = 1000


@dataclass
class OpenVersions:
    """Open runs of one workflow type, by revision and by recorded version per change id."""

    entry_id: str
    workflow_type: str
    runs: int = 0
    truncated: bool = False
    revisions: Counter[str] = field(default_factory=Counter)
    #: change id -> version -> open runs that recorded it
    versions: dict[str, Counter[int]] = field(default_factory=dict)
    #: the entry's current revision when the runs were scanned
    current_revision: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"entry": self.entry_id, "workflow_type": self.workflow_type, "open_runs": self.runs,
                "truncated": self.truncated, "revisions": dict(self.revisions),
                "versions": {change: {str(v): n for v, n in sorted(counts.items())}
                             for change, counts in sorted(self.versions.items())},
                "current_revision": self.current_revision}


async def open_versions(client: Client, revision: Revision, *, limit: int = MAX_RUNS) -> OpenVersions:
    """Scan the open runs of ``revision``'s workflow type (histories are read for their markers).

    ``revision`` is reported as the current one (``current_revision``): pass the entry's current revision.
    """
    type_name = revision.workflow_type
    found = OpenVersions(entry_id=revision.entry_id, workflow_type=type_name, current_revision=revision.digest)
    query = f"WorkflowType = '{type_name}' AND ExecutionStatus = 'Running'"
    async for execution in client.list_workflows(query):
        if found.runs >= limit:
            found.truncated = True
            break
        found.runs += 1
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        memo = await execution.memo()
        digest = memo.get(REVISION_MEMO)
        found.revisions[digest if isinstance(digest, str) else "(none recorded)"] += 1
        for change, version in _recorded_versions(await handle.fetch_history()):
            found.versions.setdefault(change, Counter())[version] += 1
    return found


def _recorded_versions(history: Any) -> list[tuple[str, int]]:
    """``(change_id, version)`` of every patch marker flowctl's workflow.version recorded."""
    recorded = []
    for event in history.events:
        if not event.HasField("marker_recorded_event_attributes"):
            continue
        attributes = event.marker_recorded_event_attributes
        if attributes.marker_name != "core_patch":
            continue
        payloads = attributes.details.get("patch-data")
        if payloads is None or not payloads.payloads:
            continue
        try:
            patch_id = json.loads(payloads.payloads[0].data).get("id", "")
        except (ValueError, AttributeError):
            continue
        match = _PATCH.match(str(patch_id))
        if match:
            recorded.append((match["change"], int(match["version"])))
    return recorded

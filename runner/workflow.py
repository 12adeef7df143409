"""The one dynamic Temporal workflow that runs every ``workflow.lua`` entry.

LUA_WORKFLOW_RUNNER_NOTE — why this workflow class is *unsandboxed*:
temporalio normally re-imports workflow code inside a Python sandbox that restricts
modules and proxies non-deterministic calls. lupa (a C extension holding a Lua
interpreter) does not survive that sandbox, and the sandbox would add nothing here:
the code that must be deterministic is Lua, and the Lua sandbox
(runner.sandbox) is what makes it so — sorted ``pairs``, seeded ``math.random``,
``os.time`` from workflow time, no I/O, no Python objects. The Python code in this
module and in runner/shims only calls temporalio's deterministic workflow APIs
(workflow.now/random/uuid4/patched/sleep/execute_activity). Hence
``@workflow.defn(dynamic=True, sandboxed=False)``, and workers register it with
``UnsandboxedWorkflowRunner``.

How a run ends:
- ``return value`` → the workflow completes with ``value`` (runner.values mapping);
- ``return nil, err`` → the workflow fails with an ApplicationError whose type is
  ``err:kind()`` (non-retryable when the error says so); a string ``err`` is kind INTERNAL;
- ``error(errors.new{...})`` → the same as returning that error: the error object shows
  it was raised on purpose;
- a sandbox limit (memory, instructions, stack) → the workflow fails, non-retryable
  ``LIMIT_EXCEEDED`` naming the limit and the Lua file:line: retrying the same code
  on the same history would hit it again;
- any other Lua error (``error("...")``, ``attempt to index a nil value``…) → the
  *workflow task* fails, like an exception in a Temporal workflow written in Python or
  Go: Temporal retries the task and the run resumes from its history once the code is
  fixed (a new revision for ``auto_upgrade`` workers) — or an operator resets or
  terminates it. The Lua message and traceback are in the task failure (UI / describe).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError

from registry.revision import Revision
from runner.driver import WorkflowDriver
from runner.failures import FlowFailure, LimitExceeded, LuaRuntimeError, failure_from_lua
from runner.revisions import RevisionSource
from runner.sandbox import LuaSandbox
from runner.shims.ctx import CONTEXT_MEMO
from runner.shims.run_context import WorkflowRun
from runner.shims.workflow_modules import install_workflow_modules
from runner.temporal_failures import to_application_error
from runner.values import from_lua, to_lua

__all__ = ["LUA_WORKFLOW_RUNNER_NOTE", "REVISION_MEMO", "make_workflow_class"]

LUA_WORKFLOW_RUNNER_NOTE = __doc__
#: Memo key recording the revision digest a run executes for its whole life (SPEC §4 Pinning).
REVISION_MEMO = "flowctl.revision"


class LuaWorkflowError(Exception):
    """A Lua error that fails the workflow *task* (Temporal retries it), with the Lua traceback."""


def make_workflow_class(source: RevisionSource) -> type:
    """A dynamic, unsandboxed workflow class serving every workflow.lua entry of ``source``."""

    @workflow.defn(dynamic=True, sandboxed=False)
    class LuaWorkflow:
        """Runs one workflow.lua revision's ``main`` in a Lua sandbox, driven by WorkflowDriver."""

        @workflow.run
        async def run(self, args: Sequence[RawValue]) -> Any:
            revision = _pinned_revision(source)
            sandbox = LuaSandbox(seed=workflow.random().getrandbits(63), clock=workflow.time)
            driver = WorkflowDriver(sandbox, {})
            run = WorkflowRun(sandbox=sandbox, driver=driver, revision=revision, source=source,
                              context=_context())
            driver.handlers.update(install_workflow_modules(run, _listed_modules(revision)))
            main = _load_main(sandbox, revision, source)
            converter = workflow.payload_converter()
            inputs = [to_lua(sandbox, converter.from_payload(arg.payload), f"input[{i + 1}]")
                      for i, arg in enumerate(args)]
            try:
                results = await driver.run(main, *inputs)
            except LimitExceeded as exc:
                raise to_application_error(exc) from None
            except LuaRuntimeError as exc:
                raise _runtime_error(exc) from None
            return _outcome(results)

    return LuaWorkflow


def _pinned_revision(source: RevisionSource) -> Revision:
    """The revision this run executes: the one in its memo, else the current one (then recorded)."""
    info = workflow.info()
    digest = workflow.memo_value(REVISION_MEMO, None)
    try:
        revision = source.workflow(info.workflow_type, digest if isinstance(digest, str) else None)
    except FlowFailure as failure:
        # Not an ApplicationError on purpose: the task is retried, so a worker that has not yet
        # seen a fresh apply picks the run up once it has (Temporal does the same for unknown types).
        raise LuaWorkflowError(f"{failure.message}") from None
    if digest is None:
        workflow.upsert_memo({REVISION_MEMO: revision.digest})
    return revision


def _context() -> dict[str, Any]:
    value = workflow.memo_value(CONTEXT_MEMO, None)
    return dict(value) if isinstance(value, dict) else {}


def _listed_modules(revision: Revision) -> list[str]:
    modules = revision.data.get("modules") or []
    return [m for m in modules if isinstance(m, str)]


def _load_main(sandbox: LuaSandbox, revision: Revision, source: RevisionSource) -> Any:
    """Compile the entry's Lua (and its imported libraries) and return its ``method`` function."""
    for alias, library_id in sorted(revision.imports.items()):
        library = revision.libraries.get(library_id)
        if library is None or library.source is None:
            raise LuaWorkflowError(f"{revision.entry_id}: imported library {library_id} has no source")
        sandbox.add_library(alias, library.source, library.source_name or f"{library_id}.lua")
        _add_nested_libraries(sandbox, library, revision)
    if revision.source is None:
        raise LuaWorkflowError(f"{revision.entry_id}: the revision has no Lua source")
    try:
        module = sandbox.load(revision.source, revision.source_name or f"{revision.name}.lua")
    except LuaRuntimeError as exc:
        raise _runtime_error(exc) from None
    method = str(revision.data.get("method") or "main")
    function = None
    try:
        function = module[method]
    except Exception:
        function = None
    if function is None or sandbox.lua.eval("type")(function) != "function":
        raise LuaWorkflowError(
            f"{revision.source_name}: the module does not export a function {method!r}; "
            f"end the file with `return {{ {method} = {method} }}` (or fix `method:` in {revision.entry_id})"
        )
    return function


def _add_nested_libraries(sandbox: LuaSandbox, library: Revision, root: Revision) -> None:
    """Libraries imported by a library are required by their own aliases."""
    for alias, nested_id in sorted(library.imports.items()):
        nested = root.libraries.get(nested_id)
        if nested is not None and nested.source is not None:
            sandbox.add_library(alias, nested.source, nested.source_name or f"{nested_id}.lua")


def _outcome(results: tuple[Any, ...]) -> Any:
    """The workflow result, or raise the workflow failure for ``return nil, err``."""
    value = results[0] if results else None
    err = results[1] if len(results) > 1 else None
    if err is not None:
        raise to_application_error(failure_from_lua(err))
    return from_lua(value, "result") if value is not None else None


def _runtime_error(exc: LuaRuntimeError) -> Exception:
    """An error() with an error object fails the workflow; anything else fails the task."""
    value = getattr(exc, "value", None)
    if value is not None and _is_error_object(value):
        return to_application_error(failure_from_lua(value))
    return LuaWorkflowError(str(exc))


def _is_error_object(value: Any) -> bool:
    try:
        return callable(value.kind) if hasattr(value, "kind") else False
    except Exception:
        return False


_ = ApplicationError  # re-exported for callers matching workflow failures

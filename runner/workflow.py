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

from registry.revision import Revision
from runner.driver import WorkflowDriver
from runner.failures import FlowFailure, LimitExceeded, LuaRuntimeError, failure_from_lua
from runner.revisions import RevisionSource, imported_libraries
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


def make_workflow_class(source: RevisionSource, **limits: int) -> type:
    """A dynamic, unsandboxed workflow class serving every workflow.lua entry of ``source``.

    ``limits`` are LuaSandbox keyword arguments (``memory_limit``, ``instruction_limit``).
    """

    async def run(self, args: Sequence[RawValue]) -> Any:
        revision = _pinned_revision(source)
        sandbox = LuaSandbox(seed=workflow.random().getrandbits(63), clock_ns=workflow.time_ns,
                             spawn=True, owner=revision.entry_id, **limits)
        driver = WorkflowDriver(sandbox, {})
        run = WorkflowRun(sandbox=sandbox, driver=driver, revision=revision, source=source,
                          context=_context())
        driver.handlers.update(install_workflow_modules(run, _listed_modules(revision)))
        try:
            main = _entrypoint(sandbox, revision)
            converter = workflow.payload_converter()
            inputs = [to_lua(sandbox, converter.from_payload(arg.payload), f"input[{i + 1}]")
                      for i, arg in enumerate(args)]
            results = await driver.run(main, *inputs)
            return _outcome(sandbox, results)
        except LimitExceeded as exc:
            raise to_application_error(exc) from None
        except LuaRuntimeError as exc:
            raise _runtime_error(sandbox, exc) from None
        except FlowFailure as failure:  # a value that cannot cross (input or result): the caller's bug
            raise to_application_error(failure) from None

    # temporalio refuses @workflow.run on functions defined in a function because a *sandboxed*
    # workflow class must be importable by name; this class is unsandboxed and never re-imported,
    # and building it here lets each worker bind its own revision source and limits.
    run.__qualname__ = "LuaWorkflow.run"
    LuaWorkflow = type("LuaWorkflow", (), {
        "__doc__": "Runs one workflow.lua revision's ``main`` in a Lua sandbox, driven by WorkflowDriver.",
        "__module__": __name__,
        "run": workflow.run(run),
    })
    LuaWorkflow.__qualname__ = "LuaWorkflow"
    workflow.defn(dynamic=True, sandboxed=False)(LuaWorkflow)
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


def _entrypoint(sandbox: LuaSandbox, revision: Revision) -> Any:
    """Register the entry's imported libraries and compile its source into the run's entry point."""
    for alias, library in imported_libraries(revision):
        assert library.source is not None
        sandbox.add_library(alias, library.source, library.source_name or f"{library.name}.lua")
    if revision.source is None:
        raise LuaWorkflowError(f"{revision.entry_id}: the revision has no Lua source")
    method = str(revision.data.get("method") or "main")
    return sandbox.entrypoint(revision.source, revision.source_name or f"{revision.name}.lua", method)


def _outcome(sandbox: LuaSandbox, results: tuple[Any, ...]) -> Any:
    """The workflow result, or raise the workflow failure for ``return nil, err``."""
    value = results[0] if results else None
    err = results[1] if len(results) > 1 else None
    if err is not None:
        raise to_application_error(failure_from_lua(sandbox, err))
    return from_lua(sandbox, value, "result")


def _runtime_error(sandbox: LuaSandbox, exc: LuaRuntimeError) -> Exception:
    """An error() with an error object fails the workflow; anything else fails the task."""
    if exc.value is not None and sandbox.error_fields(exc.value) is not None:
        return to_application_error(failure_from_lua(sandbox, exc.value))
    return LuaWorkflowError(str(exc))

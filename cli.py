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
from pathlib import Path
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

#: Where validate keeps its Lua analysis cache (created on first use; skipped when not writable).
_VALIDATE_CACHE = os.path.join(".flowctl", "cache")


@main.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(), envvar="FLOWCTL_ENTRIES")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github"]), default="text",
              show_default=True, help="text for people, json for tools, github for Actions annotations.")
@click.option("--strict", is_flag=True, help="Fail (exit 1) on warnings too.")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=_VALIDATE_CACHE, show_default=True,
              help="Lua analysis cache directory (env FLOWCTL_VALIDATE_CACHE_DIR).")
@click.option("--no-cache", is_flag=True, help="Parse every Lua source again; read and write no cache.")
@reports_errors
def validate_command(paths: tuple[str, ...], fmt: str, strict: bool, cache_dir: str, no_cache: bool) -> None:
    """Check entry files and their Lua sources: YAML, JSON Schema, references, Lua syntax, lint.

    PATHS are entry directories or YAML files (default: entries; env FLOWCTL_ENTRIES).
    Exit 0: valid; 1: problems found (warnings only with --strict); 2: usage error or crash.
    """
    from pathlib import Path

    from registry.reporters import render
    from registry.validate import validate_project

    report = validate_project(list(paths) or ["entries"], strict=strict,
                              cache_dir=None if no_cache else Path(cache_dir))
    click.echo(render(report.diagnostics, fmt,  # type: ignore[arg-type]
                      files=len(report.project.documents), entries=len(report.project.entries)), nl=False)
    sys.exit(int(ExitCode.OK if report.ok else ExitCode.PROBLEMS))


@main.group("schema")
def schema_group() -> None:
    """The JSON Schemas of entry files, for editors and other tools."""


@schema_group.command("export")
@click.argument("directory", type=click.Path(file_okay=False))
@reports_errors
def schema_export_command(directory: str) -> None:
    """Write every entry schema into DIRECTORY (for yaml-language-server; see docs/entries.md)."""
    from pathlib import Path

    from registry.schema_export import FILE_SCHEMA, export_schemas

    written = export_schemas(Path(directory))
    for path in written:
        click.echo(f"wrote {path}")
    top = Path(directory) / FILE_SCHEMA
    click.echo(f"hint: start entry files with `# yaml-language-server: $schema={top}` (a path relative to "
               "the YAML file, or a URL)")


# ---------------------------------------------------------------------------
# diff / apply / registry  (issue: Registry)
# ---------------------------------------------------------------------------

_REGISTRY_HELP = "Registry: a path or sqlite:///path.db (default .flowctl/registry.db; env FLOWCTL_REGISTRY)."


def _registry_option(func: F) -> F:
    return click.option("--registry", "registry_url", envvar="FLOWCTL_REGISTRY", metavar="URL",
                        help=_REGISTRY_HELP)(func)


def _tree_options(func: F) -> F:
    """Options shared by diff and apply: which tree, which registry, prune, strict, json."""
    func = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(func)
    func = click.option("--strict", is_flag=True, help="Refuse the tree on validation warnings too.")(func)
    func = click.option("--prune", is_flag=True,
                        help="Delete registry entries gone from the tree (in the tree's namespaces).")(func)
    func = _registry_option(func)
    func = click.option("--entries", "entries_dir", envvar="FLOWCTL_ENTRIES", default="entries",
                        show_default=True, type=click.Path(),
                        help="Entries directory (or YAML file) to publish; env FLOWCTL_ENTRIES.")(func)
    return func


def _echo_diagnostics(diagnostics: list[Any], *, err: bool = True) -> None:
    from registry.reporters import render

    if diagnostics:
        click.echo(render(diagnostics, "text"), nl=False, err=err)


def _json(body: Any) -> str:
    import json

    return json.dumps(body, indent=2, ensure_ascii=False)


def _invalid_tree(diagnostics: list[Any], *, as_json: bool, what: str) -> None:
    """Report an invalid tree: diagnostics (stderr, or a JSON body on stdout) and what was not done."""
    if as_json:
        click.echo(_json({"ok": False, "diagnostics": [d.to_dict() for d in diagnostics]}))
        return
    _echo_diagnostics(diagnostics)
    click.secho(f"error: the tree is invalid; {what}", fg="red", err=True)
    click.echo("hint: fix the problems above (`flowctl validate` checks the tree on its own)", err=True)


@main.command("diff")
@_tree_options
@reports_errors
def diff_command(entries_dir: str, registry_url: str | None, prune: bool, strict: bool,
                 as_json: bool) -> None:
    """Show what apply would change: created / changed (unified diffs) / unchanged / deleted.

    Writes nothing. Exit 0: nothing to do; 1: changes pending; 2: invalid tree or error.
    """
    from registry.open_store import open_store
    from registry.plan import Action, render_plan, unified_diff
    from registry.publish import plan_tree

    try:
        with open_store(registry_url, create=False) as store:
            check, plan = plan_tree([entries_dir], store, prune=prune, strict=strict, cache_dir=Path(_VALIDATE_CACHE))
    except FlowError as exc:
        exc.exit_code = ExitCode.USAGE  # diff reserves 1 for "changes pending"
        raise
    if plan is None:
        _invalid_tree(check.diagnostics, as_json=as_json, what="no plan was computed")
        sys.exit(int(ExitCode.USAGE))
    if as_json:
        changes = [{"id": c.entry_id, "kind": c.kind, "action": str(c.action), "digest": c.digest,
                    "previous_digest": c.previous_digest,
                    "diff": "" if c.action is Action.UNCHANGED else unified_diff(c)} for c in plan.changes]
        click.echo(_json({"ok": True, "prune": prune, "has_changes": plan.has_changes,
                          "counts": plan.counts(), "diagnostics": [d.to_dict() for d in check.diagnostics],
                          "changes": changes}))
    else:
        _echo_diagnostics(check.diagnostics)
        click.echo(render_plan(plan, show_diffs=True), nl=False)
    sys.exit(int(ExitCode.PROBLEMS if plan.has_changes else ExitCode.OK))


@main.command("apply")
@_tree_options
@click.option("--dry-run", is_flag=True, help="Validate and print the plan; write nothing.")
@click.option("--force", is_flag=True, help="Override the replay gate (accepted; the gate is not built yet).")
@reports_errors
def apply_command(entries_dir: str, registry_url: str | None, prune: bool, strict: bool, as_json: bool,
                  dry_run: bool, force: bool) -> None:
    """Validate the tree and publish it to the registry as immutable revisions, in one transaction.

    Prints the plan, then one `ID created|changed|unchanged|deleted` line per entry.
    Exit 0: applied (or nothing to do); 1: invalid tree, conflict or registry error.
    """
    from registry.open_store import open_store
    from registry.plan import compute_plan, render_plan
    from registry.publish import apply_plan, check_tree

    # before opening the store: an invalid tree writes nothing
    check = check_tree([entries_dir], strict=strict, cache_dir=Path(_VALIDATE_CACHE))
    if not check.ok:
        _invalid_tree(check.diagnostics, as_json=as_json, what="nothing was applied")
        sys.exit(int(ExitCode.PROBLEMS))
    if not as_json:
        _echo_diagnostics(check.diagnostics)  # warnings
    with open_store(registry_url, create=not dry_run) as store:
        plan = compute_plan(check.revisions, store, prune=prune)
        if plan.has_changes and not as_json:
            click.echo(render_plan(plan, show_unchanged=False), nl=False)
        outcome = apply_plan(check, plan, store, dry_run=dry_run)
    if as_json:
        click.echo(_json({"ok": True, "dry_run": dry_run, "prune": prune, "counts": plan.counts(),
                          "event": outcome.event.id if outcome.event else None,
                          "diagnostics": [d.to_dict() for d in outcome.diagnostics],
                          "entries": [r.to_dict() for r in outcome.results]}))
        return
    for result in outcome.results:
        notes = [result.note] if result.note else []
        if dry_run and str(result.action) != "unchanged":
            notes.append("dry run")
        click.echo(f"{result.entry_id} {result.action}" + (f" ({'; '.join(notes)})" if notes else ""))
    if dry_run:
        click.echo("dry run: nothing was written")
    elif outcome.event is not None:
        click.echo(f"applied as event #{outcome.event.id}")


@main.group("registry")
def registry_group() -> None:
    """Inspect the registry: list, show, history; roll an entry back."""


@registry_group.command("list")
@_registry_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@reports_errors
def registry_list_command(registry_url: str | None, as_json: bool) -> None:
    """Every entry's current revision."""
    import json

    from registry.open_store import open_store

    with open_store(registry_url, create=False) as store:
        current = store.list_current()
    if as_json:
        listed = [r.to_dict(include_source=False) for r in current]
        click.echo(json.dumps(listed, indent=2, ensure_ascii=False))
        return
    if not current:
        click.echo("the registry is empty (run `flowctl apply`)")
    width = max((len(r.entry_id) for r in current), default=0)
    for rev in current:
        click.echo(f"{rev.entry_id:<{width}}  {rev.kind:<15}  {rev.short_digest}")


@registry_group.command("show")
@click.argument("entry_id")
@click.option("--revision", "ref", metavar="REV", help="A digest or digest prefix (default: current).")
@_registry_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@reports_errors
def registry_show_command(entry_id: str, ref: str | None, registry_url: str | None, as_json: bool) -> None:
    """One revision of an entry: its YAML, its Lua source and the entry's revisions."""
    import json

    from registry.open_store import open_store
    from registry.revision import dump_data

    with open_store(registry_url, create=False) as store:
        rev = store.resolve(entry_id, ref) if ref else store.current(entry_id)
        if rev is None:
            known = store.revisions_of(entry_id)
            raise FlowError(f"{entry_id} is not in the registry" + (" (it was deleted)" if known else ""),
                            hint=f"`flowctl registry show {entry_id} --revision REV` shows an old revision"
                            if known else "check the ID with `flowctl registry list`")
        infos = store.revisions_of(entry_id)
    if as_json:
        body = rev.to_dict()
        body["revisions"] = [{"digest": i.digest, "event": i.event_id, "at": i.at, "current": i.is_current}
                             for i in infos]
        click.echo(json.dumps(body, indent=2, ensure_ascii=False))
        return
    current = next((i for i in infos if i.digest == rev.digest), None)
    click.echo(f"{rev.entry_id} ({rev.kind})")
    click.echo(f"revision: {rev.digest}{' (current)' if current and current.is_current else ''}")
    for alias, lib_id in sorted(rev.imports.items()):
        click.echo(f"import:   {alias} -> {lib_id} {rev.libraries[lib_id].short_digest}")
    click.echo(f"--- {rev.entry_id}.yaml")
    click.echo(dump_data(rev.data), nl=False)
    if rev.source is not None:
        click.echo(f"--- {rev.source_name}")
        click.echo(rev.source, nl=not rev.source.endswith("\n"))
    click.echo("--- revisions (oldest first)")
    for info in infos:
        mark = "*" if info.is_current else " "
        click.echo(f"{mark} {info.digest[:12]}  {info.at}  event #{info.event_id}")


@registry_group.command("history")
@click.argument("entry_id", required=False)
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many events.")
@_registry_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@reports_errors
def registry_history_command(entry_id: str | None, limit: int | None, registry_url: str | None,
                             as_json: bool) -> None:
    """Apply and rollback events, newest first (only those touching ENTRY_ID when given)."""
    import json

    from registry.open_store import open_store

    with open_store(registry_url, create=False) as store:
        events = store.history(entry_id, limit=limit)
    if as_json:
        click.echo(json.dumps([{"event": e.id, "verb": e.verb, "actor": e.actor, "at": e.at, "changes": [
            {"id": c.entry_id, "action": c.action, "digest": c.digest, "previous_digest": c.previous_digest}
            for c in e.changes]} for e in events], indent=2))
        return
    if not events:
        click.echo(f"no events{' for ' + entry_id if entry_id else ''}")
    for event in events:
        click.echo(f"#{event.id}  {event.at}  {event.verb} by {event.actor}")
        for c in event.changes:
            before, after = (c.previous_digest or "")[:12] or "-", (c.digest or "")[:12] or "-"
            click.echo(f"    {c.entry_id} {c.action} {before} -> {after}")


@registry_group.command("rollback")
@click.argument("entry_id")
@click.argument("rev")
@_registry_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@reports_errors
def registry_rollback_command(entry_id: str, rev: str, registry_url: str | None, as_json: bool) -> None:
    """Make an old revision REV (digest or prefix) of ENTRY_ID current again, as a new event."""
    from registry.open_store import open_store
    from registry.publish import rollback_entry

    with open_store(registry_url, create=False) as store:
        revision, event = rollback_entry(store, entry_id, rev)
    change = event.changes[0] if event is not None else None
    if as_json:
        click.echo(_json({"id": entry_id, "digest": revision.digest, "event": event.id if event else None,
                          "previous_digest": change.previous_digest if change else revision.digest}))
        return
    if event is None or change is None:
        click.echo(f"{entry_id} is already at {revision.short_digest}; nothing to do")
        return
    was = (change.previous_digest or "")[:12] or "nothing (it was deleted)"
    click.echo(f"{entry_id} rolled back to {revision.short_digest} (was {was}) as event #{event.id}")


# ---------------------------------------------------------------------------
# worker / dev / run / describe  (issue: Runner core)
# ---------------------------------------------------------------------------


def _python_path_option(func: F) -> F:
    return click.option("--python-path", "python_paths", multiple=True, type=click.Path(file_okay=False),
                        help="Directory function.python handlers import from (repeatable; default: the "
                             "entries directory when it exists).")(func)


def _default_python_paths(python_paths: tuple[str, ...]) -> list[str]:
    if python_paths:
        return list(python_paths)
    entries = os.environ.get("FLOWCTL_ENTRIES", "entries")
    return [entries] if os.path.isdir(entries) else []


@main.command("worker")
@click.option("--worker", "worker_ids", multiple=True, metavar="ID",
              help="temporal.worker entry to serve (repeatable; default: every worker in the registry).")
@_registry_option
@_python_path_option
@click.option("--poll-interval", type=click.FloatRange(min=0.1), default=1.0, show_default=True,
              help="Seconds between checks of the registry for new applies.")
@click.option("--drain-timeout", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="Seconds running activities get to finish after SIGTERM/SIGINT.")
@click.option("--metrics-port", type=click.IntRange(1, 65535), metavar="N",
              help="Serve Prometheus metrics (Temporal SDK + flowctl's Lua metrics) on this port.")
@reports_errors
def worker_command(worker_ids: tuple[str, ...], registry_url: str | None, python_paths: tuple[str, ...],
                   poll_interval: float, drain_timeout: float, metrics_port: int | None) -> None:
    """Serve the registry's workflows and activities on their Temporal task queues.

    Runs until SIGTERM/SIGINT, then drains. New applies are picked up without a restart.
    """
    from datetime import timedelta

    from registry.open_store import open_store
    from runner.temporal.worker import run_worker

    with open_store(registry_url, create=False) as store:
        run_worker(store, worker_ids, python_paths=[Path(p) for p in _default_python_paths(python_paths)],
                   poll_interval=poll_interval, drain_timeout=timedelta(seconds=drain_timeout),
                   metrics_port=metrics_port)


@main.command("dev")
@click.option("--entries", "entries_dir", envvar="FLOWCTL_ENTRIES", default="entries", show_default=True,
              type=click.Path(), help="Entries directory to apply and serve.")
@click.option("--state-dir", default=".flowctl", show_default=True, type=click.Path(file_okay=False),
              help="Where the registry, the dev server's database and its log live.")
@_registry_option
@click.option("--port", type=click.IntRange(1, 65535), default=7233, show_default=True,
              help="Port of the local Temporal server.")
@click.option("--ui-port", type=click.IntRange(0, 65535), default=8233, show_default=True,
              help="Port of the Temporal web UI (0: no UI).")
@click.option("--demo", is_flag=True, help="Run the entries' demo workflows (meta.demo.input), print results, stop.")
@click.option("--run", "run_ids", multiple=True, metavar="ID", help="Also start this workflow entry (repeatable).")
@click.option("--input", "input_text", metavar="JSON|@FILE", help="Input of the --run workflows.")
@click.option("--keep-running", is_flag=True, help="Keep serving after the demo/--run workflows finished.")
@_python_path_option
@reports_errors
def dev_command(entries_dir: str, state_dir: str, registry_url: str | None, port: int, ui_port: int, demo: bool,
                run_ids: tuple[str, ...], input_text: str | None, keep_running: bool,
                python_paths: tuple[str, ...]) -> None:
    """Everything locally: a Temporal dev server, apply ENTRIES, a worker, and optionally a demo run."""
    from runner.client.executions import parse_input
    from runner.dev.embedded import DemoRun, DevOptions, run_dev
    from runner.temporal.worker import configure_logging

    for path in _default_python_paths(python_paths or ((entries_dir,) if os.path.isdir(entries_dir) else ())):
        sys.path.insert(0, str(Path(path).resolve()))
    configure_logging()
    value = parse_input(input_text)
    options = DevOptions(entries=Path(entries_dir), state_dir=Path(state_dir), registry_url=registry_url,
                         port=port, ui_port=ui_port or None, demo=demo, keep_running=keep_running,
                         runs=tuple(DemoRun(entry_id, value) for entry_id in run_ids))
    ok = run_dev(options, click.echo)
    sys.exit(int(ExitCode.OK if ok else ExitCode.PROBLEMS))


@main.command("run")
@click.argument("entry_id")
@click.option("--input", "input_text", metavar="JSON|@FILE", help="The workflow's input: JSON text or @file.json.")
@click.option("--id", "workflow_id", metavar="WFID", help="Workflow ID (default: the entry name and a random suffix).")
@click.option("--context", "context_text", metavar="JSON", help="Context values for ctx.get / ctx.all (a JSON object).")
@click.option("--wait", is_flag=True, help="Wait for the result; exit 1 if the workflow fails.")
@click.option("--name", metavar="NAME", help="Idempotent start: the workflow id; a running one is reused.")
@click.option("--message", "message_specs", multiple=True, metavar="TOPIC[=JSON]",
              help="A message delivered before any later signal (repeatable; reaches a reused run too).")
@click.option("--option", "option_specs", multiple=True, metavar="KEY=JSON",
              help="A temporal.workflow.* start option, e.g. execution_timeout='\"1h\"' (repeatable).")
@_registry_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@reports_errors
def run_command(entry_id: str, input_text: str | None, workflow_id: str | None, context_text: str | None,
                wait: bool, name: str | None, message_specs: tuple[str, ...], option_specs: tuple[str, ...],
                registry_url: str | None, as_json: bool) -> None:
    """Start the workflow entry ENTRY_ID (pinned to its current revision); with --wait, print its result."""
    import asyncio
    import json

    from registry.open_store import open_store
    from runner.client.executions import parse_input, run_entry
    from runner.revision_source import StoreRevisionSource

    value = parse_input(input_text)
    context = parse_input(context_text) if context_text else None
    if context is not None and not isinstance(context, dict):
        raise FlowError("--context must be a JSON object", hint='e.g. --context \'{"tenant": "t-1"}\'')
    messages = [_split_spec(spec, "--message", required=False) for spec in message_specs]
    options = dict(_split_spec(spec, "--option", required=True) for spec in option_specs)
    with open_store(registry_url, create=False) as store:
        source = StoreRevisionSource(store)
        outcome = asyncio.run(run_entry(source, entry_id, value, workflow_id=workflow_id or name, wait=wait,
                                        context=context, options=options, messages=messages))
    if as_json:
        click.echo(json.dumps(outcome.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(f"started {outcome.workflow_id} (run {outcome.run_id}) on {outcome.task_queue}, "
                   f"revision {outcome.revision[:12]}")
        if outcome.waited and outcome.ok:
            click.echo(json.dumps(outcome.result, indent=2, ensure_ascii=False))
        elif outcome.waited and outcome.failure is not None:
            where = f" at {outcome.failure.where}" if outcome.failure.where else ""
            click.secho(f"failed: {outcome.failure.kind}: {outcome.failure.message}{where}", fg="red", err=True)
    sys.exit(int(ExitCode.OK if outcome.ok else ExitCode.PROBLEMS))


def _split_spec(spec: str, option: str, *, required: bool) -> tuple[str, Any]:
    """``KEY=JSON`` (JSON value; a bare word is taken as a string) or, when allowed, just ``KEY``."""
    import json

    key, sep, raw = spec.partition("=")
    if not key or (required and not sep):
        raise FlowError(f"{option} {spec!r} is not KEY=VALUE", hint=f'e.g. {option} name=\'{{"a": 1}}\'')
    if not sep:
        return key, None
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def _registry_client(registry_url: str | None, client_id: str | None) -> Any:
    from registry.open_store import open_store
    from runner.client.executions import client_entry
    from runner.revision_source import StoreRevisionSource

    with open_store(registry_url, create=False) as store:
        return client_entry(StoreRevisionSource(store), client_id)


def _control_command(action: str, needs_name: bool, help_text: str) -> None:
    """flowctl signal|query|update|cancel|terminate: one call on a workflow handle."""

    @click.option("--run-id", help="A specific run (default: the latest).")
    @click.option("--client", "client_id", metavar="ID",
                  help="temporal.client entry (default: the registry's only one).")
    @_registry_option
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @reports_errors
    def command(workflow_id: str, run_id: str | None, client_id: str | None, registry_url: str | None,
                as_json: bool, name: str = "", input_texts: tuple[str, ...] = (), reason: str = "") -> None:
        import asyncio
        import json

        from runner.client.connect import connect
        from runner.client.executions import control_execution, parse_input

        client_rev = _registry_client(registry_url, client_id)
        args = [parse_input(text) for text in input_texts]

        async def call() -> Any:
            return await control_execution(await connect(client_rev), workflow_id, action, name, args,
                                           run_id=run_id, reason=reason)

        result = asyncio.run(call())
        if action in ("query", "update"):
            click.echo(json.dumps(result, indent=None if as_json else 2, ensure_ascii=False))
        elif as_json:
            click.echo(json.dumps({"ok": True, "workflow_id": workflow_id, "action": action}))
        else:
            click.echo(f"{action} {workflow_id}{' ' + name if name else ''}: ok")

    command.__doc__ = help_text
    if needs_name:
        command = click.option("--input", "input_texts", multiple=True, metavar="JSON|@FILE",
                               help="An argument (JSON or @file); repeat for several.")(command)
        command = click.argument("name")(command)
    if action == "terminate":
        command = click.option("--reason", default="", help="Why (shown in the history).")(command)
    command = click.argument("workflow_id")(command)  # added last: it comes first on the command line
    main.command(action)(command)


_control_command("signal", True, "Send the message NAME (a signal) to WORKFLOW_ID, with --input as its payload.")
_control_command("query", True, "Call the workflow.on_query handler NAME of WORKFLOW_ID and print its result.")
_control_command("update", True, "Call the workflow.on_update handler NAME of WORKFLOW_ID and print its result.")
_control_command("cancel", False, "Request cancellation: blocking calls in WORKFLOW_ID fail with CANCELED.")
_control_command("terminate", False, "Terminate WORKFLOW_ID at once (no cleanup code runs).")


@main.command("versions")
@click.argument("entry_id")
@click.option("--client", "client_id", metavar="ID", help="temporal.client entry (default: the workflow's worker's).")
@_registry_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@reports_errors
def versions_command(entry_id: str, client_id: str | None, registry_url: str | None, as_json: bool) -> None:
    """Which revisions and workflow.version branches the open runs of ENTRY_ID still use."""
    import asyncio
    import json

    from registry.open_store import open_store
    from runner.client.connect import connect
    from runner.client.executions import client_entry, workflow_client
    from runner.client.open_versions import open_versions
    from runner.revision_source import StoreRevisionSource
    from runner.sandbox.failures import FlowFailure

    with open_store(registry_url, create=False) as store:
        source = StoreRevisionSource(store)
        try:
            revision = source.workflow(entry_id)
        except FlowFailure as failure:
            raise FlowError(failure.message, hint="list what is applied with `flowctl registry list`") from None
        client_rev = client_entry(source, client_id) if client_id else workflow_client(source, revision)
        current = revision.digest

    async def scan() -> Any:
        return await open_versions(await connect(client_rev), revision)

    found = asyncio.run(scan())
    if as_json:
        click.echo(json.dumps({**found.to_dict(), "current_revision": current}, indent=2))
        return
    more = " (the first ones only)" if found.truncated else ""
    click.echo(f"{found.entry_id} (type {found.workflow_type}): {found.runs} open run(s){more}")
    for digest, count in found.revisions.most_common():
        mark = " (current)" if digest == current else ""
        click.echo(f"  revision {digest[:12]}{mark}: {count}")
    for change, counts in sorted(found.versions.items()):
        shown = ", ".join(f"v{version}: {count}" for version, count in sorted(counts.items()))
        untouched = found.runs - sum(counts.values())
        rest = f", no marker (took min): {untouched}" if untouched else ""
        click.echo(f"  workflow.version({change!r}): {shown}{rest}")


@main.command("describe")
@click.argument("workflow_id")
@click.option("--run-id", help="A specific run (default: the latest).")
@click.option("--client", "client_id", metavar="ID", help="temporal.client entry to connect with "
              "(default: the registry's only one).")
@_registry_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@reports_errors
def describe_command(workflow_id: str, run_id: str | None, client_id: str | None, registry_url: str | None,
                     as_json: bool) -> None:
    """Status, revision, pending activities and result or failure of the workflow WORKFLOW_ID."""
    import asyncio
    import json

    from runner.client.connect import connect
    from runner.client.executions import describe_execution

    client_rev = _registry_client(registry_url, client_id)

    async def describe() -> Any:
        return await describe_execution(await connect(client_rev), workflow_id, run_id)

    found = asyncio.run(describe())
    if as_json:
        click.echo(json.dumps(found.to_dict(), indent=2, ensure_ascii=False, default=str))
        return
    click.echo(f"{found.workflow_id}  {found.status}")
    click.echo(f"  type:       {found.workflow_type} on {found.task_queue}")
    click.echo(f"  run:        {found.run_id}")
    click.echo(f"  revision:   {found.revision or '(not started by flowctl)'}")
    click.echo(f"  started:    {found.start_time}" + (f", closed {found.close_time}" if found.close_time else ""))
    click.echo(f"  history:    {found.history_length} events")
    for pending in found.pending_activities:
        failure = f", last failure: {pending['last_failure']}" if pending["last_failure"] else ""
        click.echo(f"  pending:    {pending['activity_type']} attempt {pending['attempt']} "
                   f"({pending['state']}{failure})")
    if found.result is not None:
        click.echo("  result:     " + json.dumps(found.result, ensure_ascii=False))
    if found.failure is not None:
        click.echo(f"  failure:    {found.failure['kind']}: {found.failure['message']}")


# ---------------------------------------------------------------------------
# test / replay  (issue: Lua workflow tests)
# ---------------------------------------------------------------------------


@main.command("test")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("-k", "pattern", metavar="PATTERN", help="Run only tests whose file::name contains PATTERN (or matches "
              "it as a glob).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "junit"]), default="text", show_default=True,
              help="text for people; json or junit (XML) for CI.")
@click.option("--update-golden", is_flag=True, help="Rewrite the golden files test.golden(name) compares against.")
@click.option("--timeout", "test_timeout", type=click.FloatRange(min=0.1), default=60.0, show_default=True,
              help="Real seconds one test function may take.")
@click.option("--entries", "entries_dir", type=click.Path(file_okay=False), metavar="DIR",
              help="Entries the tests run against (default: the directory of each test file, or the nearest "
                   "one above it with entry YAML files).")
@reports_errors
def test_command(paths: tuple[str, ...], pattern: str | None, fmt: str, update_golden: bool, test_timeout: float,
                 entries_dir: str | None) -> None:
    """Run the *_test.lua files under PATHS (default: entries) on Temporal's time-skipping test server.

    Exit 0: every test passed; 1: a test failed; 2: no tests found or usage error.
    """
    import asyncio

    from runner.testing import quiet_sdk_logs, run_tests
    from runner.testing.report import render_failures, render_json, render_junit, render_summary

    quiet_sdk_logs()
    echo = (lambda text: click.echo(text, nl=False)) if fmt == "text" else None
    try:
        report = asyncio.run(run_tests(list(paths) or ["entries"], pattern=pattern, update_golden=update_golden,
                                       test_timeout=test_timeout, entries=Path(entries_dir) if entries_dir else None,
                                       echo=echo))
    except FlowError as exc:
        exc.exit_code = ExitCode.USAGE  # 1 means "a test failed"
        raise
    if fmt == "json":
        click.echo(render_json(report), nl=False)
    elif fmt == "junit":
        click.echo(render_junit(report), nl=False)
    else:
        click.echo(render_failures(report), nl=False)
        click.echo(render_summary(report), nl=False)
    if not report.outcomes:
        where = ", ".join(paths) or "entries"
        error = FlowError(f"no tests ran (under {where}" + (f", matching -k {pattern!r})" if pattern else ")"),
                          hint="name test files *_test.lua and their functions test_*")
        error.exit_code = ExitCode.USAGE
        raise error
    sys.exit(int(ExitCode.OK if report.ok else ExitCode.PROBLEMS))


@main.command("replay")
@click.option("--histories", "histories_dir", type=click.Path(file_okay=False), metavar="DIR",
              help="Replay the exported histories (*.json) in DIR.")
@click.option("--workflow-id", "workflow_ids", multiple=True, metavar="ID",
              help="Fetch and replay this workflow's history from Temporal (repeatable).")
@click.option("--query", metavar="Q", help="Replay every workflow this visibility query lists, e.g. "
              "\"WorkflowType='app:order_workflow' AND StartTime > '2025-01-01T00:00:00Z'\".")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True,
              help="At most this many workflows from --query.")
@click.option("--entries", "entries_dir", type=click.Path(), metavar="DIR",
              help="Replay against this working tree instead of the registry's current revisions.")
@click.option("--client", "client_id", metavar="ID",
              help="temporal.client entry for --workflow-id/--query (default: the only one).")
@_registry_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@reports_errors
def replay_command(histories_dir: str | None, workflow_ids: tuple[str, ...], query: str | None, limit: int,
                   entries_dir: str | None, client_id: str | None, registry_url: str | None, as_json: bool) -> None:
    """Replay workflow histories on the current code; report the first diverging command of each.

    Run it before applying a change (CI: --entries DIR): exit 0 when every history replays,
    1 when one diverges or cannot be read, 2 on usage errors.
    """
    import asyncio
    import json

    from runner.replay import replay_main

    if not (histories_dir or workflow_ids or query):
        raise click.UsageError("pass --histories DIR, --workflow-id ID or --query Q")
    results = asyncio.run(replay_main(histories_dir=Path(histories_dir) if histories_dir else None,
                                      workflow_ids=list(workflow_ids), query=query, limit=limit,
                                      entries=Path(entries_dir) if entries_dir else None,
                                      registry_url=registry_url, client_id=client_id))
    if as_json:
        click.echo(json.dumps({"ok": all(r.ok for r in results), "histories": [r.to_dict() for r in results]},
                              indent=2, ensure_ascii=False))
    else:
        for result in results:
            label = {"ok": "OK", "diverged": "DIVERGED", "error": "ERROR"}[result.status]
            kind = f" ({result.workflow_type}, {result.events} events)" if result.workflow_type else ""
            click.secho(f"{label:<8} {result.name}{kind}", fg=None if result.ok else "red")
            if not result.ok:
                click.echo(f"         {result.message}")
                if result.where:
                    click.echo(f"         at {result.where}")
        bad = sum(1 for r in results if not r.ok)
        click.echo(f"{len(results) - bad} replayed OK, {bad} failed" if bad else f"{len(results)} replayed OK")
        if any(r.status == "diverged" for r in results):
            click.echo("hint: guard the change with workflow.version(change_id, min, max) so running workflows "
                       "keep their old path (docs/testing.md)", err=True)
    sys.exit(int(ExitCode.OK if all(r.ok for r in results) else ExitCode.PROBLEMS))


def run() -> None:
    """The ``flowctl`` console script: run the command, flush, and exit without finalizing Python.

    temporalio's native runtime keeps background threads that, rarely, abort the process while
    the interpreter finalizes (``PyGILState_Release``) — after the command itself succeeded.
    Output is flushed and stores are closed by then, so leaving with ``os._exit`` is safe.
    """
    code = 0
    try:
        main()
    except SystemExit as exc:
        if isinstance(exc.code, int):
            code = exc.code
        elif exc.code is not None:
            print(exc.code, file=sys.stderr)
            code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()

"""The flowctl command line, declarations only: options in, one call into ``registry`` or ``runner``,
the result rendered by ``registry.render`` / ``runner.render``, printed with its exit code by ``runner.console``.

Runner commands import the runner in their body, so registry commands start without temporalio.
Every option can also be set through a ``FLOWCTL_<COMMAND>_<OPTION>`` environment variable (click's
``auto_envvar_prefix``); the shared ones have short names (``FLOWCTL_REGISTRY``, ``FLOWCTL_ENTRIES``).
"""

from __future__ import annotations

import asyncio
import functools
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

import registry.render
import registry.validate
import runner.render
from registry import browse, publish
from registry.errors import ExitCode
from registry.render import FORMATS, Format
from registry.sandbox_limits import INSTRUCTIONS_RANGE
from registry.schedules import OVERLAPS
from registry.schema_export import export_schemas
from runner import console
from runner.console import Decorator, FlowGroup, MemorySize, Seconds, emit, finish, options
from runner.project.completion import SHELLS, completion_script, entry_ids
from runner.project.init import EXAMPLES, init_project
from runner.project.stubs import write_stubs
from runner.rollout import DEFAULT_GATE_LIMIT, ReplayGate
from runner.schedules import ScheduleReconciler

#: Where validate, diff and apply keep the Lua analysis cache (created on first use; skipped when not writable).
_VALIDATE_CACHE = Path(".flowctl", "cache")

#: ``--client ID``, the temporal.client entry to connect with (each command says which is the default).
client_option = functools.partial(click.option, "--client", "client_id", metavar="ID")
registry_option = click.option("--registry", "registry_url", envvar="FLOWCTL_REGISTRY", metavar="URL",
                               help="Registry: a path, sqlite:///path.db or postgresql://user@host:port/db "
                                    "(default .flowctl/registry.db; env FLOWCTL_REGISTRY).")
#: ``--registry URL --json``, which every command reading the registry takes.
registry_json_options = options(registry_option, click.option("--json", "as_json", is_flag=True, help="Print JSON."))
run_id_option = click.option("--run-id", help="A specific run (default: the latest).")
python_path_option = click.option("--python-path", "python_paths", multiple=True, type=click.Path(file_okay=False),
                                  help="Directory function.python handlers import from (repeatable; default: the "
                                       "entries directory when it exists).")
#: Options shared by diff and apply: which tree, which registry, prune, strict, json.
tree_options = options(
    click.option("--entries", "entries_dir", envvar="FLOWCTL_ENTRIES", default="entries",
                 type=click.Path(), help="Entries directory (or YAML file) to publish; env FLOWCTL_ENTRIES."),
    registry_option,
    click.option("--prune", is_flag=True,
                 help="Delete registry entries gone from the tree (in the tree's namespaces)."),
    click.option("--strict", is_flag=True, help="Refuse the tree on validation warnings too."),
    click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text."), python_path_option)


@click.group(cls=FlowGroup, context_settings={"auto_envvar_prefix": "FLOWCTL", "help_option_names": ["-h", "--help"],
                                              "show_default": True})
@click.version_option(package_name="flowctl", prog_name="flowctl")
def main() -> None:
    """flowctl: declarative Lua workflows on Temporal.

    validate → diff → apply entries to the registry; worker serves them; dev does it all locally.
    """


@main.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(), envvar="FLOWCTL_ENTRIES")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text",
              help="text for people, json for tools, github for Actions annotations.")
@click.option("--strict", is_flag=True, help="Fail (exit 1) on warnings too.")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=str(_VALIDATE_CACHE),
              help="Lua analysis cache directory (env FLOWCTL_VALIDATE_CACHE_DIR).")
@click.option("--no-cache", is_flag=True, help="Parse every Lua source again; read and write no cache.")
@python_path_option
def validate_command(paths: tuple[str, ...], fmt: Format, strict: bool, cache_dir: str, no_cache: bool,
                     python_paths: tuple[str, ...]) -> None:
    """Check entry files and their Lua sources: YAML, JSON Schema, references, Lua syntax, lint.

    PATHS are entry directories or YAML files (default: entries; env FLOWCTL_ENTRIES).
    Exit 0: valid; 1: problems found (warnings only with --strict); 2: usage error or crash.
    """
    report = registry.validate.validate_project(list(paths) or ["entries"], strict=strict,
                                                cache_dir=None if no_cache else Path(cache_dir),
                                                python_paths=python_paths or None)
    finish(registry.render.validation(report, fmt), ok=report.ok)


@main.group("schema")
def schema_group() -> None:
    """The JSON Schemas of entry files, for editors and other tools."""


@schema_group.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def schema_export_command(directory: Path) -> None:
    """Write every entry schema into DIRECTORY (for yaml-language-server; see docs/entries.md)."""
    emit(registry.render.schemas_written(export_schemas(directory), directory))


#: The replay gate's options (diff and apply; docs/changing-workflows.md).
gate_options = options(
    click.option("--gate-limit", type=click.IntRange(min=1), default=DEFAULT_GATE_LIMIT, metavar="N",
                 help="The replay gate replays at most N open runs (newest first), plus a few closed ones."),
    click.option("--no-gate", is_flag=True, help="Skip the replay gate (apply: with --reason)."))


@main.command("diff", error_exit=ExitCode.USAGE)
@tree_options
@gate_options
def diff_command(entries_dir: str, registry_url: str | None, prune: bool, strict: bool, as_json: bool,
                 python_paths: tuple[str, ...], gate_limit: int, no_gate: bool) -> None:
    """Show what apply would change: created / changed (unified diffs) / unchanged / deleted; the replay gate's verdict;
    the schedules it would create, update or delete on the cluster.

    Writes nothing. Exit 0: nothing to do; 1: changes pending; 2: invalid tree or error.
    """
    diff = publish.diff_registry([entries_dir], registry_url, prune=prune, strict=strict, cache_dir=_VALIDATE_CACHE,
                                 gate=None if no_gate else ReplayGate(gate_limit), python_paths=python_paths or None,
                                 schedules=ScheduleReconciler())
    emit(registry.render.diffed(diff, as_json=as_json))
    sys.exit(int(diff.exit_code))


@main.command("apply")
@tree_options
@click.option("--dry-run", is_flag=True, help="Validate, run the replay gate and print the plan; write nothing.")
@gate_options
@click.option("--reason", metavar="TEXT", help="Why --no-gate (recorded in `flowctl registry history`).")
def apply_command(entries_dir: str, registry_url: str | None, prune: bool, strict: bool, as_json: bool,
                  python_paths: tuple[str, ...], dry_run: bool, gate_limit: int, no_gate: bool,
                  reason: str | None) -> None:
    """Validate the tree and publish it to the registry as immutable revisions, in one transaction.

    Prints the plan, the replay gate's verdict, then one `ID created|changed|unchanged|deleted` line per entry, then
    what was done to each schedule on the cluster (after the registry write; docs/schedules.md).
    Exit 0: applied (or nothing to do); 1: invalid tree, refused by the replay gate, conflict, registry error or a
    schedule not reconciled.
    """
    if no_gate != bool(reason):
        raise click.UsageError("--no-gate and --reason TEXT go together (the reason is recorded in the registry)")
    outcome = publish.publish_tree([entries_dir], registry_url, prune=prune, dry_run=dry_run, strict=strict,
                                   cache_dir=_VALIDATE_CACHE, gate=None if no_gate else ReplayGate(gate_limit),
                                   no_gate_reason=reason, python_paths=python_paths or None,
                                   schedules=ScheduleReconciler(),
                                   on_progress=None if as_json else lambda s: emit(registry.render.apply_progress(s)))
    finish(registry.render.applied(outcome, as_json=as_json), ok=outcome.ok)


@main.group("registry")
def registry_group() -> None:
    """Inspect the registry: list, show, history; roll an entry back; copy it to another store."""


@registry_group.command("list")
@registry_json_options
def registry_list_command(registry_url: str | None, as_json: bool) -> None:
    """Every entry's current revision."""
    emit(registry.render.entry_list(browse.list_entries(registry_url), as_json=as_json))


@registry_group.command("show")
@click.argument("entry_id", shell_complete=entry_ids())
@click.option("--revision", "ref", metavar="REV", help="A digest or digest prefix (default: current).")
@registry_json_options
def registry_show_command(entry_id: str, ref: str | None, registry_url: str | None, as_json: bool) -> None:
    """One revision of an entry: its YAML, its Lua source and the entry's revisions."""
    emit(registry.render.shown(browse.show_entry(registry_url, entry_id, ref), as_json=as_json))


@registry_group.command("history")
@click.argument("entry_id", required=False, shell_complete=entry_ids())
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many events.")
@registry_json_options
def registry_history_command(entry_id: str | None, limit: int | None, registry_url: str | None, as_json: bool) -> None:
    """Apply and rollback events, newest first (only those touching ENTRY_ID when given)."""
    emit(registry.render.history(browse.entry_history(registry_url, entry_id, limit=limit), entry_id, as_json=as_json))


@registry_group.command("rollback")
@click.argument("entry_id", shell_complete=entry_ids())
@click.argument("rev")
@registry_json_options
def registry_rollback_command(entry_id: str, rev: str, registry_url: str | None, as_json: bool) -> None:
    """Make an old revision REV (digest or prefix) of ENTRY_ID current again, as a new event."""
    emit(registry.render.rolled_back(publish.rollback(registry_url, entry_id, rev), as_json=as_json))


@registry_group.command("copy")
@click.option("--from", "source_url", required=True, metavar="URL", help="The registry to copy (path or URL).")
@click.option("--to", "target_url", required=True, metavar="URL", help="The registry to copy into (created if new).")
@click.option("--merge", is_flag=True, help="Into a registry that has entries: add only what it lacks.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def registry_copy_command(source_url: str, target_url: str, merge: bool, as_json: bool) -> None:
    """Copy every revision, event, pin and quarantine record to another registry; verify the digests there."""
    from registry.copy import copy_registry
    emit(registry.render.copied(copy_registry(source_url, target_url, merge=merge), as_json=as_json))


@main.command("worker")
@click.option("--worker", "worker_ids", multiple=True, metavar="ID",
              help="temporal.worker entry to serve (repeatable; default: every worker in the registry).")
@registry_option
@python_path_option
@click.option("--poll-interval", type=Seconds(min=0.1), default=1.0,
              help="Seconds between checks of the registry for new applies (PostgreSQL pushes them at once).")
@click.option("--drain-timeout", type=Seconds(min=0), default=30.0,
              help="Seconds running activities get to finish after SIGTERM/SIGINT.")
@click.option("--metrics-port", type=click.IntRange(1, 65535), metavar="N",
              help="Serve Prometheus metrics (Temporal SDK + flowctl's Lua metrics) on this port.")
@click.option("--lua-call-timeout", type=Seconds(min=0.1), default=4.0, metavar="SECONDS", help="Watchdog: a "
              "workflow task's Lua running longer restarts the worker and quarantines the run (docs/sandbox.md).")
@click.option("--otel", is_flag=True, help="Export OpenTelemetry traces over OTLP (OTEL_EXPORTER_OTLP_* environment; "
              "pip install 'flowctl[otel]').")
@click.option("--metrics-host", default="127.0.0.1", metavar="HOST", help="Address the metrics bind (0.0.0.0: all).")
@click.option("--log-format", type=click.Choice(["logfmt", "json"]), default="logfmt", help="Log line format.")
@click.option("--max-memory", type=MemorySize(), metavar="SIZE",
              help="Most Lua heap an entry's limits.memory may ask for, e.g. 256MiB (default and maximum: 64MiB).")
@click.option("--max-instructions", type=click.IntRange(*INSTRUCTIONS_RANGE), metavar="N", help="Most instructions "
              "an entry's limits.instructions_per_task may ask for (default: 50,000,000 workflow, 10^9 activity).")
def worker_command(worker_ids: tuple[str, ...], registry_url: str | None, python_paths: tuple[str, ...],
                   poll_interval: float, drain_timeout: float, metrics_port: int | None,
                   lua_call_timeout: float, otel: bool, **operations: Any) -> None:
    """Serve the registry's workflows and activities on their Temporal task queues.

    Runs until SIGTERM/SIGINT, then drains. New applies are picked up without a restart.
    """
    from registry.open_store import open_store
    from runner.client.inputs import python_paths_or_entries
    from runner.temporal.supervisor import run_worker
    with open_store(registry_url, create=False) as store:
        run_worker(store, worker_ids, python_paths=python_paths_or_entries(python_paths), poll_interval=poll_interval,
                   drain_timeout=timedelta(seconds=drain_timeout), metrics_port=metrics_port,
                   lua_call_timeout=lua_call_timeout, otel=otel, **operations)


@main.command("dev")
@click.option("--entries", "entries_dir", envvar="FLOWCTL_ENTRIES", default="entries",
              type=click.Path(path_type=Path), help="Entries directory to apply and serve.")
@click.option("--state-dir", default=".flowctl", type=click.Path(file_okay=False, path_type=Path),
              help="Where the registry, the dev server's database and its log live.")
@registry_option
@click.option("--port", type=click.IntRange(1, 65535), default=7233, help="Port of the local Temporal server.")
@click.option("--ui-port", type=click.IntRange(0, 65535), default=8233, help="Port of the Temporal web UI (0: no UI).")
@click.option("--demo", is_flag=True, help="Run the entries' demo workflows (meta.demo.input), print results, stop.")
@click.option("--run", "run_ids", multiple=True, metavar="ID", help="Also start this workflow entry (repeatable).")
@click.option("--input", "input_text", metavar="JSON|@FILE", help="Input of the --run workflows.")
@click.option("--keep-running", is_flag=True, help="Keep serving after the demo/--run workflows finished.")
@python_path_option
def dev_command(entries_dir: Path, state_dir: Path, registry_url: str | None, port: int, ui_port: int, demo: bool,
                run_ids: tuple[str, ...], input_text: str | None, keep_running: bool,
                python_paths: tuple[str, ...]) -> None:
    """Everything locally: a Temporal dev server, apply ENTRIES, a worker, and optionally a demo run."""
    from runner.client.inputs import parse_input, python_paths_or_entries
    from runner.dev.embedded import DemoRun, DevOptions, run_dev
    value = parse_input(input_text)
    finish(ok=run_dev(DevOptions(entries=entries_dir, state_dir=state_dir, registry_url=registry_url, port=port,
                                ui_port=ui_port or None, demo=demo, keep_running=keep_running,
                                runs=tuple(DemoRun(entry_id, value) for entry_id in run_ids),
                                python_paths=python_paths_or_entries(python_paths, entries_dir)), click.echo))


@main.command("run")
@click.argument("entry_id", shell_complete=entry_ids("workflow.lua"))
@click.option("--input", "input_text", metavar="JSON|@FILE", help="The workflow's input: JSON text or @file.json.")
@click.option("--id", "workflow_id", metavar="WFID", help="Workflow ID (default: the entry name and a random suffix).")
@click.option("--context", "context_text", metavar="JSON", help="Context values for ctx.get / ctx.all (a JSON object).")
@click.option("--wait", is_flag=True, help="Wait for the result; exit 1 if the workflow fails.")
@click.option("--name", metavar="NAME", help="Idempotent start: the workflow id; a running one is reused.")
@click.option("--message", "message_specs", multiple=True, metavar="TOPIC[=JSON]",
              help="A message delivered before any later signal (repeatable; reaches a reused run too).")
@click.option("--option", "option_specs", multiple=True, metavar="KEY=JSON",
              help="A temporal.workflow.* start option, e.g. execution_timeout='\"1h\"' (repeatable).")
@click.option("--stuck-after", type=click.IntRange(min=1), default=1, metavar="N", help="--wait: warn (stderr) once "
              "the workflow task failed N times (Temporal retries the 1st failure at once, later ones after 10 s+).")
@click.option("--stuck-timeout", type=Seconds(min=0), metavar="SECONDS",
              help="--wait: exit 1 once the run has been stuck this long (default: keep waiting and warning).")
@registry_json_options
def run_command(entry_id: str, input_text: str | None, workflow_id: str | None, context_text: str | None,
                wait: bool, name: str | None, message_specs: tuple[str, ...], option_specs: tuple[str, ...],
                stuck_after: int, stuck_timeout: float | None, registry_url: str | None, as_json: bool) -> None:
    """Start the workflow entry ENTRY_ID (pinned to its current revision); with --wait, print its result."""
    from runner.client import control
    outcome = control.run(registry_url, entry_id, input_text=input_text, context_text=context_text,
                          workflow_id=workflow_id or name, wait=wait, message_specs=message_specs,
                          option_specs=option_specs, stuck_after=stuck_after, stuck_timeout=stuck_timeout,
                          on_stuck=lambda wf_id, failure: emit(runner.render.stuck_warning(wf_id, failure)))
    finish(runner.render.started(outcome, as_json=as_json), ok=outcome.ok)


def _control_command(action: str, help_text: str, *own: Decorator) -> None:
    """Declare ``flowctl ACTION WORKFLOW_ID``, one call on a workflow's handle; ``own``: its own parameters."""

    def command(workflow_id: str, run_id: str | None, client_id: str | None, registry_url: str | None,
                as_json: bool, name: str = "", input_texts: tuple[str, ...] = (), reason: str = "") -> None:
        from runner.client import control
        done = control.control(registry_url, client_id, action, workflow_id, name=name, input_texts=input_texts,
                               run_id=run_id, reason=reason)
        emit(runner.render.controlled(done, as_json=as_json))

    command.__doc__ = help_text
    main.command(action)(options(click.argument("workflow_id"), *own, run_id_option,
                                 client_option(help="temporal.client entry (default: the registry's only one)."),
                                 registry_json_options)(command))


#: ``NAME --input JSON|@FILE``: the handler a signal, query or update reaches, and its arguments.
named_call = options(click.argument("name"), click.option("--input", "input_texts", multiple=True, metavar="JSON|@FILE",
                                                          help="An argument (JSON or @file); repeat for several."))
_control_command("signal", "Send the message NAME (a signal) to WORKFLOW_ID, with --input as its payload.", named_call)
_control_command("query", "Call the workflow.on_query handler NAME of WORKFLOW_ID and print its result.", named_call)
_control_command("update", "Call the workflow.on_update handler NAME of WORKFLOW_ID and print its result.", named_call)
_control_command("cancel", "Request cancellation: blocking calls in WORKFLOW_ID fail with CANCELED.")
_control_command("terminate", "Terminate WORKFLOW_ID at once (no cleanup code runs).",
                 click.option("--reason", default="", show_default=False, help="Why (shown in the history)."))


@main.group("activity")
def activity_group() -> None:
    """Complete, fail or heartbeat an open (pending) activity from outside, by TOKEN or workflow + activity id."""


def _activity_command(action: str, help_text: str, *own: Decorator) -> None:
    """Declare ``flowctl activity ACTION [TOKEN]``; ``own``: its own options."""

    def command(token: str | None, workflow_id: str | None, run_id: str | None, activity_id: str | None,
                client_id: str | None, registry_url: str | None, as_json: bool, **given: Any) -> None:
        from runner.client.async_activities import ActivityRef, activity_call
        ref = ActivityRef(token, workflow_id, run_id, activity_id)
        emit(runner.render.activity_done(activity_call(registry_url, client_id, action, ref, **given),
                                         as_json=as_json))

    command.__doc__ = help_text
    activity_group.command(action)(options(
        click.argument("token", required=False), click.option("--workflow-id", help="With --activity-id: no token."),
        run_id_option, click.option("--activity-id", help="The activity's id in its workflow."),
        client_option(help="temporal.client entry (default: the registry's only one)."), *own,
        registry_json_options)(command))


details_option = click.option("--details", metavar="JSON|@FILE", help="Details (JSON or @file).")
_activity_command("complete", "Complete the activity with --result.",
                  click.option("--result", metavar="JSON|@FILE", help="Its result (JSON or @file)."))
_activity_command("fail", "Fail the activity: the workflow sees err:kind() == KIND.", details_option,
                  click.option("--kind", required=True, help="Error kind (UPPER_SNAKE_CASE)."),
                  click.option("--message", required=True, help="Error message."),
                  click.option("--non-retryable", is_flag=True, help="No retry."))
_activity_command("heartbeat", "Heartbeat the activity (restarts its heartbeat timeout).", details_option)


@main.command("versions")
@click.argument("entry_id", shell_complete=entry_ids("workflow.lua"))
@client_option(help="temporal.client entry (default: the workflow's worker's).")
@registry_json_options
def versions_command(entry_id: str, client_id: str | None, registry_url: str | None, as_json: bool) -> None:
    """Which revisions and workflow.version branches the open runs of ENTRY_ID still use."""
    from runner.client import control
    emit(runner.render.versions(control.versions(registry_url, entry_id, client_id), as_json=as_json))


@main.command("describe")
@click.argument("workflow_id")
@run_id_option
@client_option(help="temporal.client entry to connect with (default: the registry's only one).")
@registry_json_options
def describe_command(workflow_id: str, run_id: str | None, client_id: str | None, registry_url: str | None,
                     as_json: bool) -> None:
    """Status, revision, pending activities and result or failure of the workflow WORKFLOW_ID."""
    from runner.client import control
    emit(runner.render.described(control.describe(registry_url, client_id, workflow_id, run_id), as_json=as_json))


@main.command("list")
@click.option("--entry", "entry_id", metavar="ID", help="Runs of this workflow entry.",
              shell_complete=entry_ids("workflow.lua"))
@click.option("--revision", metavar="REV", help="Runs executing this revision (digest or prefix).")
@click.option("--status", type=click.Choice(["running", "stuck", "failed", "completed", "canceled", "terminated",
                                             "timed_out", "continued_as_new"]), help="Runs in this status.")
@click.option("--query", metavar="Q", help="A visibility query ANDed in, e.g. \"StartTime > '2025-01-01T00:00:00Z'\".")
@click.option("--limit", type=click.IntRange(min=1), default=100, metavar="N", help="Examine at most N runs.")
@client_option(help="temporal.client entry (default: the entry's worker's, else the registry's only one).")
@registry_json_options
def list_command(entry_id: str | None, revision: str | None, status: str | None, query: str | None, limit: int,
                 client_id: str | None, registry_url: str | None, as_json: bool) -> None:
    """Runs with their entry, revision and status, newest first; `stuck`: running, its workflow task failing."""
    from runner.client import control
    emit(runner.render.run_list(control.runs(registry_url, client_id, entry_id=entry_id, revision=revision,
                                             status=status, query=query, limit=limit), as_json=as_json))


@main.group("schedule")
def schedule_group() -> None:
    """Operate the schedules of temporal.schedule entries (`flowctl apply` creates, updates and deletes them)."""


#: ``--client ID --registry URL --json``, which every schedule command takes.
schedule_options = options(client_option(help="temporal.client entry (default: the schedule entry's, else the "
                                              "registry's only one)."), registry_json_options)
overlap_option = click.option("--overlap", type=click.Choice(OVERLAPS), help="Overlap policy (default: the schedule's)")


@schedule_group.command("list")
@schedule_options
def schedule_list_command(client_id: str | None, registry_url: str | None, as_json: bool) -> None:
    """flowctl's schedules: entry, revision applied, state, next run; and schedule entries with no schedule yet."""
    from runner.schedules import operate
    emit(runner.render.schedule_list(operate.list_schedules(registry_url, client_id), as_json=as_json))


def _schedule_command(action: str, help_text: str, *own: Decorator) -> None:
    """Declare ``flowctl schedule ACTION ID`` (a schedule entry or a schedule ID); ``own``: its own parameters."""

    def command(schedule_id: str, client_id: str | None, registry_url: str | None, as_json: bool, **given: Any) -> None:
        from runner.schedules import operate
        done = operate.operate(registry_url, client_id, action, schedule_id, **given)
        emit(runner.render.schedule_result(done, as_json=as_json))

    command.__doc__ = help_text
    schedule_id = click.argument("schedule_id", metavar="ID", shell_complete=entry_ids("temporal.schedule"))
    schedule_group.command(action)(options(schedule_id, *own,
                                           schedule_options)(command))


note_option = click.option("--note", default="", show_default=False, help="Why (shown with the schedule's state).")
_schedule_command("describe", "Spec, policies and state of schedule ID, its next action times and recent runs.",
                  click.option("--next", "next_count", type=click.IntRange(1, 10), default=5, metavar="N",
                               help="How many next action times to show."))
_schedule_command("trigger", "Start a run of schedule ID now.", overlap_option)
_schedule_command("pause", "Pause schedule ID (apply keeps it paused until the entry's paused or note changes).",
                  note_option)
_schedule_command("unpause", "Unpause schedule ID.", note_option)
_schedule_command("backfill", "Start the runs schedule ID would have started from --from to --to (TIME: ISO 8601, "
                  "no offset: UTC; `now`; `-2h`: two hours ago).", overlap_option,
                  click.option("--from", "start", required=True, metavar="TIME", help="Window start."),
                  click.option("--to", "end", required=True, metavar="TIME", help="Window end."))


@main.command("test", error_exit=ExitCode.USAGE)
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("-k", "pattern", metavar="PATTERN", help="Run only tests whose file::name contains PATTERN (or matches "
              "it as a glob).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "junit"]), default="text",
              help="text for people; json or junit (XML) for CI.")
@click.option("--update-golden", is_flag=True, help="Rewrite the golden files test.golden(name) compares against.")
@click.option("--timeout", "test_timeout", type=Seconds(min=0.1), default=60.0,
              help="Real seconds one test function may take.")
@click.option("--entries", "entries_dir", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Entries the tests run against (default: the directory of each test file, or the nearest "
                   "one above it with entry YAML files).")
def test_command(paths: tuple[str, ...], pattern: str | None, fmt: str, update_golden: bool, test_timeout: float,
                 entries_dir: Path | None) -> None:
    """Run the *_test.lua files under PATHS (default: entries) on Temporal's time-skipping test server.

    Exit 0: every test passed; 1: a test failed; 2: no tests found or usage error.
    """
    from runner.testing import quiet_sdk_logs, report, require_tests, run_tests
    quiet_sdk_logs()
    result = asyncio.run(run_tests(list(paths) or ["entries"], pattern=pattern, update_golden=update_golden,
                                   test_timeout=test_timeout, entries=entries_dir,
                                   echo=(lambda text: click.echo(text, nl=False)) if fmt == "text" else None))
    click.echo(report.render(result, fmt), nl=False)
    require_tests(result, paths, pattern)
    finish(ok=result.ok)


@main.command("replay")
@click.option("--histories", "histories_dir", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Replay the exported histories (*.json) in DIR.")
@click.option("--workflow-id", "workflow_ids", multiple=True, metavar="ID",
              help="Fetch and replay this workflow's history from Temporal (repeatable).")
@click.option("--query", metavar="Q", help="Replay every workflow this visibility query lists, e.g. "
              "\"WorkflowType='app:order_workflow' AND StartTime > '2025-01-01T00:00:00Z'\".")
@click.option("--limit", type=click.IntRange(min=1), default=100, help="At most this many workflows from --query.")
@click.option("--entries", "entries_dir", type=click.Path(path_type=Path), metavar="DIR",
              help="Replay against this working tree instead of the registry's current revisions.")
@click.option("--jobs", type=click.IntRange(min=1), metavar="N", help="Replay on N processes (default: CPU count).")
@client_option(help="temporal.client entry for --workflow-id/--query (default: the only one).")
@registry_json_options
def replay_command(histories_dir: Path | None, workflow_ids: tuple[str, ...], query: str | None, limit: int,
                   entries_dir: Path | None, jobs: int | None, client_id: str | None, registry_url: str | None,
                   as_json: bool) -> None:
    """Replay workflow histories on the current code; report the first diverging command of each.

    Run it before applying a change (CI: --entries DIR): exit 0 when every history replays,
    1 when one diverges or cannot be read, 2 on usage errors.
    """
    from runner.replay import replay_main
    if not (histories_dir or workflow_ids or query):
        raise click.UsageError("pass --histories DIR, --workflow-id ID or --query Q")
    report = asyncio.run(replay_main(histories_dir=histories_dir, workflow_ids=list(workflow_ids), query=query,
                                     limit=limit, entries=entries_dir, registry_url=registry_url, client_id=client_id,
                                     jobs=jobs))
    finish(runner.render.replayed(report, as_json=as_json), ok=report.ok)


@main.command("upgrade")
@click.argument("workflow_id", required=False)
@run_id_option
@click.option("--all", "all_runs", is_flag=True, help="Every open run of --entry that executes revision --from.")
@click.option("--entry", "entry_id", metavar="ID", help="With --all: the workflow entry.")
@click.option("--from", "from_ref", metavar="REV", help="With --all: the revision (digest prefix) runs execute now.")
@click.option("--to", "to_ref", metavar="REV|current", default="current", help="The revision to move to.")
@click.option("--dry-run", is_flag=True, help="Check and say what would move; record nothing.")
@click.option("--reason", default="", show_default=False, help="Why (recorded in `registry history`).")
@client_option(help="temporal.client entry (default: the registry's only one; with --all the entry's worker's).")
@registry_json_options
def upgrade_command(registry_url: str | None, as_json: bool, **request: Any) -> None:
    """Move pinned runs to another revision of their entry once their histories replay on it (exit 1: refused)."""
    from runner.rollout.upgrade import UpgradeRequest, upgrade
    result = upgrade(registry_url, UpgradeRequest(**request))
    finish(runner.render.upgraded(result, as_json=as_json), ok=result.ok)


directory_argument = click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))


@main.command("init")
@directory_argument
@click.option("--namespace", default="app", help="The namespace of the scaffolded entries.")
@click.option("--example", type=click.Choice(EXAMPLES), default="order", help="What the project starts with.")
@click.option("--force", is_flag=True, help="Overwrite files that exist.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def init_command(directory: Path, namespace: str, example: str, force: bool, as_json: bool) -> None:
    """Scaffold a project in DIRECTORY: entries/ (client, worker, workflow, activity, Lua test), editor settings,
    Lua stubs, schemas, pre-commit; `flowctl validate`, `test` and `dev --demo` work at once."""
    result = init_project(directory, namespace=namespace, example=example, force=force)
    emit(runner.render.initialized(result, as_json=as_json))


@main.command("stubs")
@directory_argument
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def stubs_command(directory: Path, as_json: bool) -> None:
    """Write the Lua API's type stubs to DIRECTORY/.editor/lua and point DIRECTORY/.luarc.json at them."""
    emit(runner.render.stubs_written(write_stubs(directory), as_json=as_json))


@main.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
def completion_command(shell: str) -> None:
    """Print the completion script of SHELL: eval "$(flowctl completion bash)" (zsh likewise);
    fish: flowctl completion fish | source."""
    click.echo(completion_script(main, shell))


def run() -> None:
    """The ``flowctl`` console script (``runner.console.run``: flush, then exit without finalizing Python)."""
    console.run(main)


if __name__ == "__main__":  # pragma: no cover
    run()

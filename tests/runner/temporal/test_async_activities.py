"""Activities completed from outside (issue 18) on the real dev server: an in-process worker serves
tests/runner/entries/async_activity, whose Lua activity returns ``activity.pending()`` after handing its
task token out (as heartbeat details); ``flowctl activity complete|fail|heartbeat`` subprocesses finish it.
Its ``function.python`` activity (async_payment_handlers.py) does the same with temporalio's
``activity.raise_complete_async()``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
import uuid
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle

from runner.client.async_activities import ActivityRef, AsyncActivities
from tests.support.paths import ENTRIES, REPO
from tests.support.worker import lua_worker

PROJECT = ENTRIES / "async_activity"
CLIENT_ONLY = """version: "1.0"
namespace: cli
entries:
  - name: client
    kind: temporal.client
    address: ${env:TEMPORAL_ADDRESS}
"""


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory: pytest.TempPathFactory, dev_server: Any) -> dict[str, str]:
    """A registry holding just a client entry for the dev server: what `flowctl activity` connects with."""
    root = tmp_path_factory.mktemp("async_cli")
    (root / "entries").mkdir()
    (root / "entries" / "cli.yaml").write_text(CLIENT_ONLY)
    env = {**os.environ, "TEMPORAL_ADDRESS": dev_server.address, "FLOWCTL_REGISTRY": str(root / "registry.db"),
           "PYTHONPATH": str(REPO), "FLOWCTL_ENTRIES": str(root / "entries")}
    applied = subprocess.run([sys.executable, "-m", "cli", "apply"], cwd=root, env=env, capture_output=True,
                             text=True, timeout=60)
    assert applied.returncode == 0, applied.stderr
    return env


async def flowctl(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """Run `python -m cli ARGS` without blocking the in-process worker's event loop."""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "cli", *args, env=env, cwd=str(REPO),
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


async def pending_token(client: Client, handle: WorkflowHandle[Any, Any], timeout: float = 30) -> tuple[str, str]:
    """(activity id, task token) of the run's pending activity once it handed its token out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pending in (await handle.describe()).raw_description.pending_activities:
            if pending.heartbeat_details.payloads:
                details = client.data_converter.payload_converter.from_payloads(pending.heartbeat_details.payloads)
                if details and isinstance(details[0], dict) and "token" in details[0]:
                    return pending.activity_id, details[0]["token"]
        await asyncio.sleep(0.2)
    raise AssertionError(f"{handle.id}: no pending activity with a token")


async def test_complete_by_token_and_fail_non_retryable(dev_server: Any, cli_env: dict[str, str]) -> None:
    client = await dev_server.client()
    async with lua_worker(client, PROJECT) as project:
        done = await project.start("pay:order", {})
        _, token = await pending_token(client, done)
        code, out, err = await flowctl(cli_env, "activity", "complete", token, "--result", '{"amount": 42}')
        assert code == 0, err
        assert token not in out and "ok" in out
        assert await done.result() == {"paid": {"amount": 42}}
        code, _, err = await flowctl(cli_env, "activity", "complete", token, "--result", "1")
        assert code == 1 and "not open" in err and "Traceback" not in err, err

        declined = await project.start("pay:order", {})
        _, token = await pending_token(client, declined)
        code, _, err = await flowctl(cli_env, "activity", "fail", token, "--kind", "DECLINED", "--message",
                                     "card declined", "--non-retryable")
        assert code == 0, err
        assert await declined.result() == {"kind": "DECLINED", "retryable": False, "message": "card declined"}
        history = await declined.fetch_history()
        started = [e for e in history.events if e.HasField("activity_task_started_event_attributes")]
        assert [e.activity_task_started_event_attributes.attempt for e in started] == [1], "no retry"


def one_error(err: str) -> str:
    """The error line of a failed `flowctl activity` (at most a hint line besides it)."""
    lines = err.strip().splitlines()
    assert len(lines) <= 2 and lines[0].startswith("error: ") and "Traceback" not in err, err
    assert all(line.startswith(("error: ", "hint: ")) for line in lines), err
    return lines[0]


async def test_bad_tokens_are_one_line_errors(cli_env: dict[str, str]) -> None:
    code, _, err = await flowctl(cli_env, "activity", "complete", "not base64!", "--result", "1")
    assert code == 1 and "not base64" in one_error(err), err
    code, _, err = await flowctl(cli_env, "activity", "complete", "AAAA", "--result", "{")
    assert code == 1 and "--result is not valid JSON" in one_error(err), err
    # well-formed base64, but no activity's token: the server refuses it
    code, _, err = await flowctl(cli_env, "activity", "complete", "AAAA", "--result", "1")
    assert code == 1 and "cannot complete the activity of the task token" in one_error(err), err
    code, _, err = await flowctl(cli_env, "activity", "complete", "--workflow-id", f"nope-{uuid.uuid4().hex[:6]}",
                                 "--activity-id", "1", "--result", "1")
    assert code == 1 and "is not open" in one_error(err), err


async def test_a_python_handler_is_completed_from_outside_and_no_token_reaches_info_logs(
        dev_server: Any, cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.syspath_prepend(str(PROJECT))  # what `flowctl worker` does (--python-path: the entries directory)
    caplog.set_level(logging.INFO)
    client = await dev_server.client()
    tokens = []
    async with lua_worker(client, PROJECT) as project:
        run = await project.start("pay:order", {"activity": "pay:await_payment_python"})
        activity_id, token = await pending_token(client, run)
        tokens.append(token)
        code, out, err = await flowctl(cli_env, "activity", "complete", token, "--result", '{"via": "python"}')
        assert code == 0 and token not in out + err, err
        assert await run.result() == {"paid": {"via": "python"}}
        # completing twice: the activity is no longer open (by token and by ids alike)
        for ref in ([token], ["--workflow-id", run.id, "--activity-id", activity_id]):
            code, out, err = await flowctl(cli_env, "activity", "complete", *ref, "--result", "1")
            assert code == 1 and "is not open" in one_error(err) and token not in out + err, err

        lua_run = await project.start("pay:order", {})
        _, token = await pending_token(client, lua_run)
        tokens.append(token)
        code, _, err = await flowctl(cli_env, "activity", "fail", token, "--kind", "DECLINED", "--message", "no",
                                     "--non-retryable")
        assert code == 0, err
        assert (await lua_run.result())["kind"] == "DECLINED"
    logged = [f"{r.getMessage()} {r.__dict__!r}" for r in caplog.records if r.levelno >= logging.INFO]
    assert logged, "the worker logged at info level"
    assert not [line for line in logged for token in tokens if token in line], "a task token reached the logs"


async def test_outside_heartbeats_by_ids_keep_it_alive_and_more_pending_than_slots(
        dev_server: Any, cli_env: dict[str, str]) -> None:
    client = await dev_server.client()
    async with lua_worker(client, PROJECT) as project:
        # max_concurrent_activities is 2: three pending activities hold no slot, so all three start
        runs = [await project.start("pay:order", {"heartbeat_timeout": "5s"} if i < 2 else {},
                                    workflow_id=f"pay-{uuid.uuid4().hex[:8]}") for i in range(3)]
        ids = [(await pending_token(client, run))[0] for run in runs]
        alive, starved = runs[0], runs[1]
        # one heartbeat through the CLI, then the Python API every second: a CLI process start per beat could
        # take longer than the 5 s timeout on a loaded machine, and this test is about the activity, not timing
        code, _, err = await flowctl(cli_env, "activity", "heartbeat", "--workflow-id", alive.id,
                                     "--activity-id", ids[0], "--details", '{"step": 1}')
        assert code == 0, err
        outside, ref = AsyncActivities(client), ActivityRef(workflow_id=alive.id, activity_id=ids[0])
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            await outside.heartbeat(ref, {"step": 2})
            await asyncio.sleep(1)
        code, _, err = await flowctl(cli_env, "activity", "complete", "--workflow-id", alive.id, "--activity-id",
                                     ids[0], "--result", '"late"')
        assert code == 0, err
        assert await alive.result() == {"paid": "late"}
        result = await starved.result()  # no heartbeats from outside: each attempt timed out
        assert result["kind"] == "TIMEOUT" and "heartbeat" in result["message"], result
        code, _, err = await flowctl(cli_env, "activity", "complete", "--workflow-id", runs[2].id, "--activity-id",
                                     ids[2], "--result", "3")
        assert code == 0, err
        assert await runs[2].result() == {"paid": 3}

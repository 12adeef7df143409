"""docs/operations.md, Metrics and Logs, on a real ``flowctl worker`` process and the real dev server.

The metrics endpoint binds 127.0.0.1 unless ``--metrics-host``, and the Lua CPU histogram has
seconds-scale buckets; ``--log-format json`` writes every line as one JSON object with a Lua log's
fields as fields of their own; nothing the worker writes carries an ESC byte (the core's logs are
forwarded through the same formatter, and a Lua string's control characters are escaped).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from runner.dev.server import free_port
from runner.temporal.metrics import LUA_CPU_BUCKETS, metrics_address, prometheus_runtime
from runner.worker_logs import CORE_LOGGER, configure_logging, core_logging, record_fields
from tests.support.paths import REPO

ENTRIES = """\
version: "1.0"
namespace: ops
entries:
  - {name: client, kind: temporal.client, address: "${env:TEMPORAL_ADDRESS}"}
  - {name: worker, kind: temporal.worker, client: client}
  - name: chatty
    kind: workflow.lua
    source: file://chatty.lua
    meta: {temporal: {workflow: {worker: worker}}}
"""
CHATTY = """\
local function main(input)
    log.info("paid \\27[31mred\\27[0m", {order = input, msg = "a field named like the message"})
    print("done", input)
    return "ok"
end

return { main = main }
"""


def _flowctl(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=cwd, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120)


def _listening(port: int) -> list[str]:
    """The local addresses (hex ``IP:PORT`` of /proc/net/tcp*) a socket listens on ``port`` at."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table, encoding="ascii") as rows:
            for row in list(rows)[1:]:
                local, state = row.split()[1], row.split()[3]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                    found.append(local)
    return found


def _scrape(port: int, worker: subprocess.Popen[bytes]) -> str:
    text = ""
    for _ in range(100):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                text = response.read().decode()
            if 'flowctl_lua_task_cpu_seconds_bucket{' in text:
                return text
        except OSError:
            pass
        time.sleep(0.2)
    worker.send_signal(signal.SIGTERM)
    shown = [line for line in text.splitlines() if "flowctl" in line]
    raise AssertionError(f"no flowctl_lua_task_cpu_seconds in the worker's metrics: {shown} {worker.communicate()}")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/net/tcp")
def test_metrics_on_localhost_with_seconds_buckets_and_json_logs(tmp_path: Path, dev_server: Any) -> None:
    (tmp_path / "entries.yaml").write_text(ENTRIES)
    (tmp_path / "chatty.lua").write_text(CHATTY)
    env = {"TEMPORAL_ADDRESS": dev_server.address, "FLOWCTL_REGISTRY": str(tmp_path / "registry.db"),
           "PYTHONPATH": str(REPO)}
    applied = _flowctl("apply", "--entries", ".", cwd=tmp_path, env=env)
    assert applied.returncode == 0, applied.stderr
    port = free_port()
    worker = subprocess.Popen([sys.executable, "-m", "cli", "worker", "--metrics-port", str(port), "--log-format",
                               "json"], cwd=tmp_path, env={**os.environ, **env}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    try:
        run = _flowctl("run", "ops:chatty", "--input", "7", "--wait", cwd=tmp_path, env=env)
        assert run.returncode == 0, run.stderr
        metrics = _scrape(port, worker)
        listening = _listening(port)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err

    bounds = {line.split('le="')[1].split('"')[0] for line in metrics.splitlines()
              if line.startswith("flowctl_lua_task_cpu_seconds_bucket{")}
    assert {"0.0001", "0.001", "0.01", "1", "10"} <= bounds and "10000" not in bounds, sorted(bounds)
    assert len(bounds) == len(LUA_CPU_BUCKETS) + 1, "the buckets, and +Inf"
    assert listening == [f"0100007F:{port:04X}"], f"bound to 127.0.0.1 only: {listening}"

    assert b"\x1b" not in err, "no ESC byte (ANSI colour codes) anywhere in the worker's output"
    lines = [json.loads(line) for line in err.decode().splitlines() if line.strip()]  # every line is JSON
    events = [line["event"] for line in lines if "event" in line]
    assert "metrics.serving" in events and "worker.started" in events and "worker.stopped" in events
    serving = next(line for line in lines if line.get("event") == "metrics.serving")
    assert serving["address"] == f"http://127.0.0.1:{port}/metrics"
    logged = next(line for line in lines if str(line.get("msg", "")).startswith("[chatty.lua:2]"))
    assert logged["order"] == 7, "a Lua log field is a field of the line"
    assert logged["lua.msg"] == "a field named like the message", "a clashing Lua field is prefixed, not lost"
    assert logged["msg"] == "[chatty.lua:2] paid \x1b[31mred\x1b[0m", "the message is the message, no dict"
    assert logged["entry"] == "ops:chatty" and logged["where"] == "chatty.lua:2" and logged["workflow_id"]
    printed = next(line for line in lines if str(line.get("msg", "")).startswith("[chatty.lua:3]"))
    assert printed["msg"] == "[chatty.lua:3] done\t7" and printed["run_id"]


def test_core_logs_and_lua_fields_as_logfmt_fields(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(log_format="logfmt")
    try:
        entry = SimpleNamespace(target="temporal_sdk_core::worker", message="\x1b[33mpoll failed\x1b[0m",
                                level=logging.WARNING, time=time.time(), fields={"attempt": 3, "msg": "x"})
        forwarding = core_logging().forwarding
        assert forwarding is not None and forwarding.logger.name == CORE_LOGGER
        forwarding._on_logs([entry])  # what the core's buffered logs go through
        logging.getLogger("temporalio.workflow").info(
            "[wf.lua:2] paid", extra={"lua_fields": {"order": 7, "items": ["a b"]}, "lua_where": "wf.lua:2",
                                      "entry_id": "app:wf"})
        err = capsys.readouterr().err
    finally:
        configure_logging()
    core_line, lua_line = err.splitlines()
    assert "\x1b" not in err
    assert core_line.split(" ", 1)[1] == ('level=warning logger=temporalio.core msg="\\u001b[33mpoll failed'
                                          '\\u001b[0m" target=temporal_sdk_core::worker attempt=3 core.msg=x')
    assert lua_line.split(" ", 1)[1] == ('level=info logger=temporalio.workflow msg="[wf.lua:2] paid" entry=app:wf '
                                         'where=wf.lua:2 order=7 items="[\\"a b\\"]"')
    record = logging.LogRecord("x", logging.INFO, "", 0, "m", (), None)
    record.temporal_activity = {"activity_type": "app:act", "workflow_run_id": "r1", "attempt": 2}
    assert {k: v for k, v in record_fields(record).items() if k not in ("ts",)} == {
        "level": "info", "logger": "x", "msg": "m", "entry": None, "where": None, "run_id": "r1",
        "activity": "app:act", "attempt": 2}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/net/tcp")
def test_metrics_host_chooses_the_interface() -> None:
    port = free_port()
    runtime = prometheus_runtime(port, "0.0.0.0", core_logging())
    assert runtime is not None and _listening(port) == [f"00000000:{port:04X}"], "--metrics-host 0.0.0.0: all"
    assert metrics_address(9464, "::1") == "[::1]:9464" and metrics_address(9464) == "127.0.0.1:9464"

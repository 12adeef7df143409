"""Secrets (issue 12): a literal in a field the schema marks secret never reaches the registry.

`validate` and `apply` refuse it (FC124) without repeating it; a `${env:NAME:-default}` default
there warns (FC125; `--strict` refuses it); `${env:NAME}` is stored unresolved. TLS and mTLS key
*paths* are not secrets: they are stored as written, and their files are never read into the registry.
"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

import cli
from registry.bounds import secret_paths
from registry.open_store import open_store
from registry.schema_check import load_schema

KEY = "sk-live-4f3c2b1a0987"
CLIENT = """\
version: "1.0"
namespace: app
entries:
  - name: client
    kind: temporal.client
    auth: {{type: api_key, api_key: "{api_key}"}}
  - name: mtls
    kind: temporal.client
    tls: {{server_ca_cert: ca.pem}}
    auth: {{type: mtls, client_cert: client.pem, client_key: client.key}}
"""


def project(root: Path, api_key: str) -> Path:
    entries = root / "entries"
    entries.mkdir(parents=True)
    (entries / "app.yaml").write_text(CLIENT.format(api_key=api_key))
    (entries / "client.key").write_text(f"-----BEGIN PRIVATE KEY-----\n{KEY}\n-----END PRIVATE KEY-----\n")
    return entries


def flowctl(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli.main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout + result.stderr


def test_the_schema_marks_the_api_key_secret_and_nothing_else() -> None:
    assert secret_paths("temporal.client.schema.json", load_schema) == (("auth", "api_key"),)
    for kind in ("temporal.worker", "workflow.lua", "function.lua", "function.python", "library.lua",
                 "temporal.schedule"):
        assert secret_paths(f"{kind}.schema.json", load_schema) == ()


def test_a_literal_key_is_refused_without_being_repeated(tmp_path: Path) -> None:
    entries = project(tmp_path, KEY)
    code, output = flowctl("validate", str(entries), "--no-cache")
    assert code == 1 and "FC124" in output and "${env:" in output
    assert KEY not in output
    registry = tmp_path / "registry.db"
    code, output = flowctl("apply", "--entries", str(entries), "--registry", str(registry))
    assert code == 1 and "FC124" in output and KEY not in output
    assert not registry.exists(), "an invalid tree creates no registry"


def test_a_default_warns_and_strict_refuses_it(tmp_path: Path) -> None:
    entries = project(tmp_path, "${env:TEMPORAL_API_KEY:-" + KEY + "}")
    code, output = flowctl("validate", str(entries), "--no-cache")
    assert code == 0 and "FC125" in output and "warning" in output
    code, output = flowctl("validate", str(entries), "--no-cache", "--strict")
    assert code == 1 and "FC125" in output


def test_a_reference_is_stored_unresolved_and_key_files_stay_paths(tmp_path: Path) -> None:
    entries = project(tmp_path, "${env:TEMPORAL_API_KEY}")
    registry = tmp_path / "registry.db"
    code, output = flowctl("apply", "--entries", str(entries), "--registry", str(registry))
    assert code == 0, output
    with open_store(str(registry)) as store:
        client, mtls = store.current("app:client"), store.current("app:mtls")
    assert client is not None and client.data["auth"]["api_key"] == "${env:TEMPORAL_API_KEY}"
    assert mtls is not None and mtls.data["auth"]["client_key"] == "client.key"
    assert KEY.encode() not in registry.read_bytes()

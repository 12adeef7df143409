"""runner.client.connect: ${env:…} resolution at connect time, TLS/auth settings, real connections."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from temporalio.service import TLSConfig

from registry.revision import Revision
from runner.client.connect import ConnectError, client_settings, connect, resolve_env
from runner.dev.server import free_port


def client_entry(**data: Any) -> Revision:
    return Revision(entry_id="app:client", kind="temporal.client", digest="0" * 64, data=data,
                    source=None, source_name=None)


def test_env_reference_is_resolved_from_the_given_environment() -> None:
    settings = client_settings(client_entry(address="${env:TEMPORAL_HOST}:7233", namespace="${env:NS}"),
                               env={"TEMPORAL_HOST": "temporal.internal", "NS": "orders"})
    assert settings.address == "temporal.internal:7233"
    assert settings.namespace == "orders"


def test_default_applies_only_when_the_variable_is_unset() -> None:
    entry = client_entry(address="${env:TEMPORAL_ADDRESS:-localhost:7233}")
    assert client_settings(entry, env={}).address == "localhost:7233"
    assert client_settings(entry, env={"TEMPORAL_ADDRESS": "10.0.0.5:7233"}).address == "10.0.0.5:7233"
    # an empty default is a legal value, distinct from "no default"
    assert resolve_env("x${env:EMPTY:-}y", entry_id="app:c", path="p", env={}) == "xy"


def test_missing_variable_names_entry_field_and_variable() -> None:
    with pytest.raises(ConnectError) as caught:
        client_settings(client_entry(auth={"type": "api_key", "api_key": "${env:TEMPORAL_API_KEY}"}), env={})
    message = caught.value.message
    assert "app:client" in message and "auth.api_key" in message and "TEMPORAL_API_KEY" in message
    assert caught.value.hint and "export TEMPORAL_API_KEY" in caught.value.hint


def test_malformed_reference_is_an_error_not_a_literal() -> None:
    with pytest.raises(ConnectError, match="malformed environment reference"):
        client_settings(client_entry(address="${env:HOST"), env={"HOST": "x"})


def test_defaults_when_fields_are_absent() -> None:
    settings = client_settings(client_entry(), env={})
    assert (settings.address, settings.namespace, settings.tls, settings.api_key) == (
        "localhost:7233", "default", False, None)


def test_api_key_turns_tls_on_unless_explicitly_disabled() -> None:
    entry = client_entry(auth={"type": "api_key", "api_key": "${env:KEY}"})
    settings = client_settings(entry, env={"KEY": "secret-123"})
    assert settings.api_key == "secret-123" and settings.tls is True
    assert "secret-123" not in settings.describe()
    plain = client_settings(client_entry(tls=False, auth={"type": "api_key", "api_key": "k"}), env={})
    assert plain.tls is False


def test_tls_files_are_read_at_connect_time(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_bytes(b"CA-BYTES")
    (tmp_path / "client.pem").write_bytes(b"CERT-BYTES")
    (tmp_path / "client.key").write_bytes(b"KEY-BYTES")
    entry = client_entry(
        tls={"server_ca_cert": "${env:CERTS}/ca.pem", "server_name": "temporal.example"},
        auth={"type": "mtls", "client_cert": "${env:CERTS}/client.pem",
              "client_key": "${env:CERTS}/client.key"},
    )
    tls = client_settings(entry, env={"CERTS": str(tmp_path)}).tls
    assert isinstance(tls, TLSConfig)
    assert (tls.server_root_ca_cert, tls.client_cert, tls.client_private_key, tls.domain) == (
        b"CA-BYTES", b"CERT-BYTES", b"KEY-BYTES", "temporal.example")


def test_unreadable_tls_file_and_half_mtls_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConnectError, match=r"cannot read tls.server_ca_cert file .*nope\.pem"):
        client_settings(client_entry(tls={"server_ca_cert": str(tmp_path / "nope.pem")}), env={})
    with pytest.raises(ConnectError, match="mtls needs client_cert and client_key"):
        client_settings(client_entry(auth={"type": "mtls"}), env={})
    with pytest.raises(ConnectError, match="unknown auth type 'oauth'"):
        client_settings(client_entry(auth={"type": "oauth"}), env={})
    with pytest.raises(ConnectError, match="cannot be combined with tls: false"):
        client_settings(client_entry(tls={"enabled": False}, auth={"type": "mtls", "client_cert": "c",
                                                                   "client_key": "k"}), env={})


def test_tls_object_can_be_disabled_and_aliases_work(tmp_path: Path) -> None:
    assert client_settings(client_entry(tls={"enabled": False}), env={}).tls is False
    assert client_settings(client_entry(tls={"enabled": True}), env={}).tls is True
    (tmp_path / "ca.pem").write_bytes(b"CA")
    tls = client_settings(client_entry(tls={"ca_file": str(tmp_path / "ca.pem")}), env={}).tls
    assert isinstance(tls, TLSConfig) and tls.server_root_ca_cert == b"CA"


def test_wrong_kind_is_refused() -> None:
    worker = Revision(entry_id="app:worker", kind="temporal.worker", digest="0" * 64, data={},
                      source=None, source_name=None)
    with pytest.raises(ConnectError, match=r"not a temporal\.client"):
        client_settings(worker)


async def test_connects_to_the_real_dev_server_through_env(dev_server: Any) -> None:
    entry = client_entry(address="${env:FLOWCTL_TEST_ADDR}", namespace="${env:FLOWCTL_TEST_NS:-default}")
    client = await connect(entry, env={"FLOWCTL_TEST_ADDR": dev_server.address})
    assert client.namespace == "default"
    handles = [wf async for wf in client.list_workflows(limit=1)]
    assert isinstance(handles, list)


async def test_unreachable_server_is_a_connect_error_not_a_traceback() -> None:
    port = free_port()  # nothing listens there
    started = time.monotonic()
    with pytest.raises(ConnectError) as caught:
        await connect(client_entry(address=f"127.0.0.1:{port}"), env={})
    assert f"127.0.0.1:{port}" in caught.value.message
    assert "flowctl dev" in (caught.value.hint or "")
    assert time.monotonic() - started < 60

"""A Temporal call's RPCError as one ``error:`` line and a hint (runner.client.connect.rpc_error).

The namespace case is also run against a real server (tests/cases/commands/d_*_namespace_missing);
here each status the server can answer with, built as the SDK builds it.
"""

from __future__ import annotations

import pytest
from temporalio.service import RPCError, RPCStatusCode

from runner.client.connect import namespace_missing, rpc_error


def error(status: RPCStatusCode, message: str) -> RPCError:
    return RPCError(message, status, b"")


def test_a_missing_namespace_is_named_with_how_to_create_it() -> None:
    exc = error(RPCStatusCode.NOT_FOUND, "Namespace prod-eu is not found.")
    assert namespace_missing(exc)
    found = rpc_error(exc, "cannot start app:x")
    assert found.message == "cannot start app:x: namespace 'prod-eu' does not exist on the Temporal server"
    assert "temporal operator namespace create --namespace prod-eu" in (found.hint or "")


def test_a_missing_workflow_is_not_a_missing_namespace() -> None:
    exc = error(RPCStatusCode.NOT_FOUND, "workflow not found for ID: x")
    assert not namespace_missing(exc)
    assert rpc_error(exc, "cannot describe x").message == "cannot describe x: workflow not found for ID: x"


@pytest.mark.parametrize("status", [RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED])
def test_an_unreachable_server_says_so(status: RPCStatusCode) -> None:
    found = rpc_error(error(status, "connection reset"), "cannot list runs")
    assert found.message == "cannot list runs: the Temporal server is unavailable (connection reset)"
    assert "is the server running" in (found.hint or "")


def test_refused_credentials_point_at_the_auth_settings() -> None:
    found = rpc_error(error(RPCStatusCode.PERMISSION_DENIED, "Request unauthorized."), "cannot cancel x")
    assert "refused the credentials" in found.message and "api_key" in (found.hint or "")


def test_other_errors_keep_the_servers_message_and_the_callers_hint() -> None:
    found = rpc_error(error(RPCStatusCode.INVALID_ARGUMENT, "bad name"), "cannot signal x", hint="check the name")
    assert (found.message, found.hint) == ("cannot signal x: bad name", "check the name")
    assert "\n" not in found.message

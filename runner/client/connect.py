"""Connect to Temporal as a ``temporal.client`` entry says, resolving ``${env:…}`` at connect time.

The registry stores client entries exactly as written, so secrets stay in the
environment of the machine running the worker: any string may be ``${env:NAME}``
or ``${env:NAME:-default}`` (also inside a longer string, e.g.
``"${env:TEMPORAL_HOST:-localhost}:7233"``). A variable that is unset and has no
default is an error naming the entry, the field and the variable.

Entry fields (docs/entries.md)::

    address: localhost:7233          # default
    namespace: default               # default
    identity: ...                    # default: the SDK's host@pid
    tls: true | false | {enabled, server_ca_cert, server_name}
    auth:
      type: none | api_key | mtls
      api_key: ${env:TEMPORAL_API_KEY}        # type api_key (implies TLS unless tls: false)
      client_cert: ..., client_key: ...       # type mtls: PEM files

``ca_file`` / ``cert_file`` / ``key_file`` are accepted as aliases of the schema's names.

File paths are read when connecting, relative to the worker's working directory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from registry.errors import FlowError
from registry.revision import Revision

__all__ = ["ClientSettings", "ConnectError", "client_settings", "connect", "namespace_missing", "resolve_env",
           "rpc_error"]

DEFAULT_ADDRESS = "localhost:7233"
DEFAULT_NAMESPACE = "default"

_ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_ENV_START = "${env:"
#: The server's answer to a call in a namespace it does not have (``Namespace NAME is not found.``).
_NO_NAMESPACE = re.compile(r"^Namespace (?P<name>\S+) is not found", re.IGNORECASE)
#: Statuses that mean the server could not be reached (or answered too late), not that the call was wrong.
_UNREACHABLE = (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED)
#: The reason inside the SDK's connection error, e.g. ``message: "Connection refused"``.
_CONNECT_REASON = re.compile(r'message: "([^"]+)"')


class ConnectError(FlowError):
    """A client entry cannot be turned into a working connection."""


@dataclass(frozen=True)
class ClientSettings:
    """A client entry with every ``${env:…}`` resolved and every file read: ready to connect."""

    entry_id: str
    address: str
    namespace: str
    tls: bool | TLSConfig
    api_key: str | None = None
    identity: str | None = None

    def describe(self) -> str:
        """A one-line, secret-free description for logs."""
        tls = "tls" if self.tls else "plaintext"
        auth = ", api key" if self.api_key else ""
        return f"{self.address} namespace={self.namespace} ({tls}{auth})"


def resolve_env(value: Any, *, entry_id: str, path: str, env: Mapping[str, str]) -> Any:
    """Replace ``${env:NAME}`` / ``${env:NAME:-default}`` in every string of ``value`` (recursively)."""
    if isinstance(value, str):
        return _resolve_string(value, entry_id=entry_id, path=path, env=env)
    if isinstance(value, Mapping):
        return {k: resolve_env(v, entry_id=entry_id, path=f"{path}.{k}" if path else str(k), env=env)
                for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_env(v, entry_id=entry_id, path=f"{path}[{i}]", env=env) for i, v in enumerate(value)]
    return value


def _resolve_string(text: str, *, entry_id: str, path: str, env: Mapping[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConnectError(
            f"{entry_id}: {path} needs the environment variable {name}, which is not set",
            hint=f"export {name}=... before starting the worker, or write ${{env:{name}:-default}}",
        )

    resolved = _ENV_REF.sub(substitute, text)
    leftover = _ENV_REF.sub("", text)
    if _ENV_START in leftover:
        raise ConnectError(
            f"{entry_id}: {path} has a malformed environment reference in {text!r}",
            hint="write ${env:NAME} or ${env:NAME:-default} (NAME: letters, digits, underscore)",
        )
    return resolved


def client_settings(revision: Revision, *, env: Mapping[str, str] | None = None) -> ClientSettings:
    """Resolve a ``temporal.client`` revision into connection settings (reads TLS files)."""
    if revision.kind != "temporal.client":
        raise ConnectError(f"{revision.entry_id} is a {revision.kind}, not a temporal.client",
                           hint="point the worker's `client:` at a temporal.client entry")
    env = os.environ if env is None else env
    data = resolve_env(
        {k: v for k, v in revision.data.items() if k in ("address", "namespace", "identity", "tls", "auth")},
        entry_id=revision.entry_id, path="", env=env,
    )
    address = str(data.get("address") or DEFAULT_ADDRESS)
    namespace = str(data.get("namespace") or DEFAULT_NAMESPACE)
    auth = data.get("auth") or {}
    if not isinstance(auth, Mapping):
        raise ConnectError(f"{revision.entry_id}: auth must be a mapping with a `type`",
                           hint="write auth: {type: none|api_key|mtls, ...}")
    auth_type = str(auth.get("type", "none"))
    tls = _tls(revision.entry_id, data.get("tls"), auth if auth_type == "mtls" else {})
    api_key: str | None = None
    if auth_type == "api_key":
        api_key = auth.get("api_key") or auth.get("key")
        if not api_key:
            raise ConnectError(f"{revision.entry_id}: auth type api_key needs auth.api_key",
                               hint="write api_key: ${env:TEMPORAL_API_KEY} and export the variable")
        if data.get("tls") is None:
            tls = True  # API keys must never travel in plaintext; `tls: false` is an explicit opt-out
    elif auth_type == "mtls":
        if not isinstance(tls, TLSConfig) or tls.client_cert is None or tls.client_private_key is None:
            raise ConnectError(f"{revision.entry_id}: auth type mtls needs client_cert and client_key",
                               hint="add client_cert and client_key (PEM file paths) under auth")
    elif auth_type != "none":
        raise ConnectError(f"{revision.entry_id}: unknown auth type {auth_type!r}",
                           hint="use one of: none, api_key, mtls")
    identity = str(data["identity"]) if data.get("identity") else None
    return ClientSettings(entry_id=revision.entry_id, address=address, namespace=namespace, tls=tls,
                          api_key=api_key, identity=identity)


#: Accepted spellings of each TLS file / option: the schema's names first, then short aliases.
_TLS_KEYS = {
    "ca": ("server_ca_cert", "ca_file"),
    "cert": ("client_cert", "cert_file"),
    "key": ("client_key", "key_file"),
    "server_name": ("server_name",),
}


def _pick(options: Mapping[str, Any], what: str) -> Any:
    for key in _TLS_KEYS[what]:
        if options.get(key) is not None:
            return options[key]
    return None


def _tls(entry_id: str, tls: Any, mtls: Mapping[str, Any]) -> bool | TLSConfig:
    options: dict[str, Any] = dict(tls) if isinstance(tls, Mapping) else {}
    enabled = tls if isinstance(tls, bool) else bool(options.pop("enabled", tls is not None))
    if mtls and not enabled and tls is not None:
        raise ConnectError(f"{entry_id}: auth type mtls cannot be combined with tls: false",
                           hint="remove `tls: false` (mTLS is TLS)")
    if not mtls and not options:
        return enabled
    if not enabled and not mtls:
        return False
    known = {key for keys in _TLS_KEYS.values() for key in keys}
    unknown = set(options) - known
    if unknown:
        raise ConnectError(f"{entry_id}: unknown tls option(s) {', '.join(sorted(unknown))}",
                           hint="tls takes enabled, server_ca_cert and server_name")
    cert = _pick(mtls, "cert") or _pick(options, "cert")
    key = _pick(mtls, "key") or _pick(options, "key")
    if bool(cert) != bool(key):
        raise ConnectError(f"{entry_id}: mTLS needs both client_cert and client_key, or neither",
                           hint="a client certificate is useless without its private key")
    server_name = _pick(options, "server_name")
    return TLSConfig(
        server_root_ca_cert=_read(entry_id, "tls.server_ca_cert", _pick(options, "ca")),
        client_cert=_read(entry_id, "auth.client_cert", cert),
        client_private_key=_read(entry_id, "auth.client_key", key),
        domain=str(server_name) if server_name else None,
    )


def _read(entry_id: str, field: str, path: Any) -> bytes | None:
    if not path:
        return None
    try:
        return Path(str(path)).expanduser().read_bytes()
    except OSError as exc:
        raise ConnectError(f"{entry_id}: cannot read {field} file {path}: {exc.strerror or exc}",
                           hint="paths are relative to the directory the worker runs in") from None


async def connect(client_revision: Revision, *, env: Mapping[str, str] | None = None,
                  identity: str | None = None, runtime: Runtime | None = None) -> Client:
    """Connect to Temporal with a ``temporal.client`` revision; a clear ConnectError when it fails."""
    settings = client_settings(client_revision, env=env)
    try:
        return await Client.connect(settings.address, namespace=settings.namespace, tls=settings.tls,
                                    api_key=settings.api_key, identity=identity or settings.identity,
                                    runtime=runtime)
    except Exception as exc:  # the SDK raises plain RuntimeError for every connection problem
        reason = _CONNECT_REASON.search(str(exc))
        raise ConnectError(
            f"{client_revision.entry_id}: cannot connect to Temporal at {settings.describe()}: "
            f"{reason.group(1) if reason else exc}",
            hint="is the server running (try `flowctl dev`)? check address, namespace and TLS settings",
        ) from None


def namespace_missing(exc: RPCError) -> bool:
    """Whether the server refused a call because the client's namespace does not exist."""
    return exc.status == RPCStatusCode.NOT_FOUND and bool(_NO_NAMESPACE.match(exc.message))


def rpc_error(exc: RPCError, doing: str, *, hint: str | None = None) -> FlowError:
    """A Temporal call's error as one line and a hint: ``doing`` says what failed (``cannot start ctl:x``).

    A missing namespace and an unreachable server are named as such (whatever the call was); any other
    error keeps the server's message, with ``hint`` (or a generic one).
    """
    missing = _NO_NAMESPACE.match(exc.message)
    if exc.status == RPCStatusCode.NOT_FOUND and missing is not None:
        namespace = missing["name"]
        return FlowError(f"{doing}: namespace {namespace!r} does not exist on the Temporal server",
                         hint=f"create it (`temporal operator namespace create --namespace {namespace}`) or fix the "
                              "`namespace` of the temporal.client entry")
    if exc.status in _UNREACHABLE:
        return FlowError(f"{doing}: the Temporal server is unavailable ({exc.message})",
                         hint="is the server running (try `flowctl dev`)? check the client entry's address")
    if exc.status in (RPCStatusCode.UNAUTHENTICATED, RPCStatusCode.PERMISSION_DENIED):
        return FlowError(f"{doing}: the Temporal server refused the credentials ({exc.message})",
                         hint="check the client entry's auth (api_key / mTLS) and the namespace's permissions")
    return FlowError(f"{doing}: {exc.message}", hint=hint or "check the client entry and the server's state")

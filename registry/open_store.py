"""Open the registry a URL names: a path or ``sqlite:///path.db`` (the embedded default), or ``postgresql://``."""

from __future__ import annotations

import os
from pathlib import Path

from registry.sqlite_store import SqliteRevisionStore
from registry.store import RegistryError, RevisionStore

__all__ = ["DEFAULT_REGISTRY_PATH", "REGISTRY_ENV", "open_store"]

#: Where the embedded store lives, relative to the working directory.
DEFAULT_REGISTRY_PATH = ".flowctl/registry.db"
#: Environment variable naming the store (same syntax as ``--registry``).
REGISTRY_ENV = "FLOWCTL_REGISTRY"


def open_store(url: str | None = None, *, create: bool = True) -> RevisionStore:
    """Open the registry named by ``url``, ``$FLOWCTL_REGISTRY`` or ``.flowctl/registry.db``.

    Accepted: a plain path, ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``
    (SQLAlchemy's convention), ``sqlite:///:memory:`` and ``postgresql://user@host:port/database``
    (libpq's URL; the password from ``${env:NAME}``, PGPASSWORD or ~/.pgpass). With ``create=False`` a store
    file that does not exist yet reads as an empty registry and nothing is written to disk
    (what ``flowctl diff`` wants).
    """
    if url is None:
        url = os.environ.get(REGISTRY_ENV)
    if url is None:
        url = DEFAULT_REGISTRY_PATH
    text = url.strip()
    if not text:  # `--registry "$PROD_DB"` with the variable unset must not write a local file
        raise RegistryError("the registry path is empty (--registry or FLOWCTL_REGISTRY)",
                            hint=f"pass --registry PATH, or unset {REGISTRY_ENV} to use {DEFAULT_REGISTRY_PATH}")
    if "://" in text:
        scheme, _, rest = text.partition("://")
        scheme = scheme.lower()
        if scheme == "sqlite":
            if not rest.startswith("/"):
                raise RegistryError(f"registry URL {text!r} is malformed",
                                    hint="write sqlite:///relative/path.db or sqlite:////absolute/path.db")
            rest = rest[1:]
            if rest == ":memory:":
                return SqliteRevisionStore(None, url=text)
            return SqliteRevisionStore(Path(rest), url=text, create=create)
        if scheme in ("postgres", "postgresql"):
            # imported here: psycopg loads only for a PostgreSQL registry
            from registry.postgres_store import PostgresRevisionStore
            return PostgresRevisionStore(text, create=create)
        raise RegistryError(f"unknown registry URL scheme {scheme!r} in {text!r}",
                            hint="use a file path, sqlite:///path.db or postgresql://user@host:port/database")
    return SqliteRevisionStore(Path(text), url=text, create=create)

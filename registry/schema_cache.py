"""Remember which entry files passed the schema stage, so an unchanged file is not checked again.

Keyed by the sha256 of the file's bytes, salted with the flowctl version and the
schemas' own text: a changed file or schema is always checked. Only files without
any schema problem are remembered (diagnostics need positions, which are cheap to
recompute but not worth storing). Like the Lua cache, failures to read or write it
are ignored: it only makes validate faster.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from importlib import resources
from pathlib import Path

from registry.lua.cache import write_atomically
from registry.version import __version__

__all__ = ["SchemaResultCache"]

#: Digests kept; older ones are dropped first.
MAX_REMEMBERED = 20_000
FILE_NAME = "schema-valid.json"


def _schema_salt() -> str:
    digest = hashlib.sha256(f"flowctl {__version__}".encode())
    for item in sorted(resources.files("schemas").iterdir(), key=lambda i: i.name):
        if item.name.endswith(".json"):
            digest.update(item.name.encode() + b"\0" + item.read_bytes())
    for module in ("schema_check.py", "contracts.py"):  # the stage's own checks: a new one re-checks every file
        with contextlib.suppress(OSError):
            digest.update(module.encode() + b"\0" + resources.files("registry").joinpath(module).read_bytes())
    return digest.hexdigest()


class SchemaResultCache:
    """Digests of entry files known to pass the schema stage under the current schemas."""

    def __init__(self, directory: Path | None) -> None:
        self.path = directory / FILE_NAME if directory is not None else None
        self.salt = _schema_salt() if directory is not None else ""
        self.known: dict[str, None] = {}  # insertion-ordered set
        self.dirty = False
        if self.path is not None:
            with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
                stored = json.loads(self.path.read_bytes())
                if stored.get("salt") == self.salt:
                    self.known = dict.fromkeys(str(d) for d in stored["valid"])

    def is_valid(self, digest: str) -> bool:
        return bool(digest) and digest in self.known

    def remember(self, digest: str) -> None:
        if digest and self.path is not None and digest not in self.known:
            self.known[digest] = None
            self.dirty = True

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        valid = list(self.known)[-MAX_REMEMBERED:]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(self.path, {"salt": self.salt, "valid": valid})
        except OSError:
            pass  # read-only checkout: validate still works, just not faster
        self.dirty = False

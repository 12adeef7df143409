"""An on-disk cache of Lua analyses, so validating an unchanged tree does not parse it again.

One JSON file per source under ``<cache_dir>/lua/``, named by the sha256 of the
flowctl version, the parser version and the source text: a changed source, parser or
flowctl never reads a stale record. The cache is an optimisation only: a missing,
unwritable or corrupt cache directory silently falls back to parsing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path

from registry.lua.facts import ChunkFacts
from registry.lua.parser import PARSER_VERSION, analyze
from registry.version import __version__

__all__ = ["AnalysisCache", "write_atomically"]


def write_atomically(target: Path, payload: object) -> None:
    """Write JSON to ``target`` through a temporary file, so readers never see half a record."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(payload, out, separators=(",", ":"))
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class AnalysisCache:
    """Facts per source text: from memory, then ``directory`` (when given), else by parsing."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory / "lua" if directory is not None else None
        self._memory: dict[str, ChunkFacts] = {}
        self._writable = directory is not None
        self._salt = f"flowctl {__version__}\0parser {PARSER_VERSION}\0".encode()

    def facts(self, text: str) -> ChunkFacts:
        """The analysis of ``text``, computed at most once per cache."""
        key = hashlib.sha256(self._salt + text.encode("utf-8", "surrogatepass")).hexdigest()
        found = self._memory.get(key)
        if found is not None:
            return found
        found = self._read(key)
        if found is None:
            found = analyze(text)
            self._write(key, found)
        self._memory[key] = found
        return found

    def _read(self, key: str) -> ChunkFacts | None:
        if self.directory is None:
            return None
        try:
            raw = (self.directory / f"{key}.json").read_bytes()
            return ChunkFacts.from_json(json.loads(raw))
        except (OSError, ValueError, KeyError, TypeError):
            return None  # absent or damaged: parse again and overwrite

    def _write(self, key: str, facts: ChunkFacts) -> None:
        if self.directory is None or not self._writable:
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            write_atomically(self.directory / f"{key}.json", facts.to_json())
        except OSError:
            self._writable = False  # read-only checkout, full disk…: carry on without the cache

"""flowctl's version, in one place: packaging reads it (pyproject.toml), caches key on it."""

__version__ = "0.1.0"

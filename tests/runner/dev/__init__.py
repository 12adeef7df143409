"""Tests of ``runner/dev/``: the Temporal binaries and the dev server."""

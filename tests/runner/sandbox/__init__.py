"""Tests of ``runner/sandbox/``: real Lua in a LuaSandbox, no Temporal server."""

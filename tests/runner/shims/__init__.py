"""Tests of ``runner/shims/``: the Lua modules as workflow code sees them (unit and on a server)."""

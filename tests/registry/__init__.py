"""Tests of ``registry/``: load, validate, plan, store; no Temporal, no Lua runtime."""

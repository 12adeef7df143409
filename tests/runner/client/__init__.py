"""Tests of ``runner/client/``: connecting, starting, querying executions."""

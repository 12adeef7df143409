"""Tests of ``runner/temporal/``: the worker, dynamic workflow and activities on a real server."""

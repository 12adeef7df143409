"""Tests of ``runner/testing/``: ``flowctl test`` and its pytest plugin."""

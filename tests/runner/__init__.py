"""Tests of ``runner/``, one folder per runner folder; data in ``entries/`` (served by the harness)."""

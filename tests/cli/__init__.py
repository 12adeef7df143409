"""Tests of ``cli.py``: every command through click's CliRunner or a real subprocess."""

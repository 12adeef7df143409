"""Lua without Lua: a pure-Python Lua 5.4 lexer and parser for stage 4 (syntax) and stage 5 (lint).

``registry/`` must not import lupa (it runs in pre-commit hooks and editors), so
validation parses Lua itself. The parser agrees with Lua 5.4 on what compiles
(tests cross-check it against real Lua through lupa) and records the facts the
lint needs: globals used, ``require`` calls, literal entry IDs passed to
``funcs.call``/``workflow.exec``/``process.*`` and what the chunk returns.
"""

"""The Lua trust boundary: everything that touches a user's Lua code directly.

``runtime`` builds the locked-down Lua 5.4 runtime (one per run or activity call), ``driver``
runs ``main`` as coroutines and turns yielded command tables into handler calls, ``channels``
keeps the run's channels, ``values`` moves plain data across the boundary (and is the one
module that reads lupa objects), ``c_locale`` pins the C locale for threads that run Lua,
``failures`` is the error model. The Lua halves live in ``lua/`` (loaded once per process, compiled to bytecode).

May import: the standard library, lupa, ``registry`` value helpers. Never temporalio, nor any
other ``runner`` folder: the rest of the runner sends this package plain values only
(tests/test_architecture.py checks it).
"""

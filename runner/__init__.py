"""The flowctl runner: serve registry revisions on Temporal, each run in a sandboxed Lua 5.4 interpreter.

Folders by boundary (docs/architecture.md):

- ``runner.sandbox`` — the Lua trust boundary: runtime factory, driver, channels, values, failures.
  Imports no temporalio.
- ``runner.shims`` — the Lua modules user code requires (``funcs``, ``time``, ``process`` …):
  Python halves here, Lua halves as ``.lua`` files beside them.
- ``runner.temporal`` — the worker, the dynamic workflow and activity, interceptors, metrics,
  failure mapping and options.
- ``runner.client`` — code outside workflows: connect, start, describe, the process client.
- ``runner.dev`` — the local dev server, the shipped binaries, ``flowctl dev``.
- ``runner.testing`` — the Lua test framework (``flowctl test``, the pytest plugin); nothing
  else under ``runner`` imports it.
- ``runner.revision_source`` (where a worker gets revisions), ``runner.history`` (history →
  command lines), ``runner.replay`` (``flowctl replay``), ``runner.render`` (text and JSON of
  the runner commands), ``runner.console`` (command outcomes to the terminal: messages, exit codes).
"""

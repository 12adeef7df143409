"""Talking to Temporal from outside a workflow: ``flowctl run|describe|signal|…`` and Python callers.

``connect`` opens a client as a ``temporal.client`` entry says, ``start`` starts a workflow entry
(pinning its revision), ``executions`` waits for, describes and signals runs, ``process_client`` is
the ``process.*`` start API for Python code, ``open_versions`` answers ``flowctl versions``.
``control`` is the one synchronous call behind each of ``flowctl run|describe|versions|signal|…``,
``inputs`` parses their command-line values (``--input``, ``--context``, ``--message``, ``--option``).

May import: temporalio, ``runner.temporal`` (options, failures, memo), ``runner.sandbox.failures``,
``runner.revision_source``, ``registry``. Never the worker.
"""

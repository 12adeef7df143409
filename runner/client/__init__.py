"""Talking to Temporal from outside a workflow: ``flowctl run|describe|signal|…`` and Python callers.

``connect`` opens a client as a ``temporal.client`` entry says, ``start`` starts a workflow entry
(pinning its revision), ``executions`` waits for and describes runs, ``process_client`` is the
``process.*`` start API for Python code, ``open_versions`` answers ``flowctl versions``.

May import: temporalio, ``runner.temporal`` (options, failures, memo), ``runner.sandbox.failures``,
``runner.revision_source``, ``registry``. Never the worker.
"""

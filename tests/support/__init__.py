"""What tests share besides fixtures: paths, the in-process worker harness, replay and history helpers.

Fixtures and hooks stay in ``conftest.py`` files; everything a test imports comes from here
(``from tests.support.worker import lua_worker``).
"""

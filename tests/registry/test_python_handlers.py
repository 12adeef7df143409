"""A function.python entry's revision records its handler module, found on the python path by file search.

The handler's source and its path relative to the python path directory are part of the
revision (and so of its digest): editing the handler changes the revision, ``diff`` shows it,
``registry show`` names the file and its sha256. A module flowctl cannot find there is
recorded as not resolved, with a warning that says where it looked.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from registry.browse import show_entry
from registry.diagnostics import Diagnostic, Severity
from registry.loader import load_project
from registry.open_store import open_store
from registry.plan import Action, unified_diff
from registry.publish import apply_tree, check_tree, plan_tree
from registry.render import shown
from registry.revision import Revision, build_revisions, compute_digest
from registry.validate import validate_project
from tests.support.projects import APP_HEADER

ENTRY_FILE = APP_HEADER + """\
  - name: charge
    kind: function.python
    handler: HANDLER_SPEC
    meta: {temporal: {activity: {worker: worker}}}
  - name: order
    kind: workflow.lua
    source: file://order.lua
    modules: [funcs]
    meta: {temporal: {workflow: {worker: worker}}}
"""

ORDER_LUA = """\
local funcs = require("funcs")

local function main(input)
  return funcs.call("app:charge", input)
end

return {main = main}
"""

HANDLER = """\
def charge(order):
    return {"charged": order["total"]}
"""


def write_entries(root: Path, *, handler: str = "payments.handlers:charge") -> Path:
    """An entries directory with a function.python entry (its handler module not written yet)."""
    entries = root / "entries"
    entries.mkdir(parents=True, exist_ok=True)
    (entries / "app.yaml").write_text(ENTRY_FILE.replace("HANDLER_SPEC", handler))
    (entries / "order.lua").write_text(ORDER_LUA)
    return entries


def write_module(base: Path, relative: str, text: str = HANDLER) -> Path:
    path = base / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def charge_revision(entries: Path, python_paths: list[Path] | None = None) -> tuple[Revision, list[Diagnostic]]:
    project = load_project([entries], python_paths=python_paths)
    return build_revisions(project)["app:charge"], project.diagnostics


def test_the_revision_records_the_handler_file_its_path_and_sha256(tmp_path: Path) -> None:
    entries = write_entries(tmp_path)
    module = write_module(entries, "payments/handlers.py")
    rev, diagnostics = charge_revision(entries)
    assert diagnostics == []
    assert rev.source == HANDLER
    assert rev.source_name == "payments/handlers.py"  # relative to the python path directory, posix
    assert rev.handler_file is not None
    assert rev.handler_file.path == "payments/handlers.py"
    assert rev.handler_file.sha256 == hashlib.sha256(module.read_bytes()).hexdigest()
    assert rev.to_dict()["handler_file"] == {"path": "payments/handlers.py", "sha256": rev.handler_file.sha256}


def test_editing_the_handler_changes_only_that_revision(tmp_path: Path) -> None:
    entries = write_entries(tmp_path)
    module = write_module(entries, "payments/handlers.py")
    before = build_revisions(load_project([entries]))
    module.write_text(HANDLER.replace('order["total"]', 'order["total"] * 100'))
    after = build_revisions(load_project([entries]))
    changed = {entry_id for entry_id in before if before[entry_id].digest != after[entry_id].digest}
    assert changed == {"app:charge"}
    assert before["app:charge"].handler_file != after["app:charge"].handler_file


def test_the_digest_does_not_depend_on_where_the_project_lives_but_on_the_module_path(tmp_path: Path) -> None:
    first = write_entries(tmp_path / "a")
    write_module(first, "payments/handlers.py")
    second = write_entries(tmp_path / "elsewhere" / "b")
    write_module(second, "payments/handlers.py")
    assert charge_revision(first)[0].digest == charge_revision(second)[0].digest

    # the same code as a package's __init__.py is another file: another revision
    package = write_entries(tmp_path / "c", handler="payments:charge")
    write_module(package, "payments/__init__.py")
    as_package, diagnostics = charge_revision(package)
    assert diagnostics == []
    assert as_package.source_name == "payments/__init__.py"
    assert as_package.source == HANDLER
    assert as_package.digest != charge_revision(first)[0].digest


def test_a_package_wins_over_a_module_of_the_same_name_as_python_imports_it(tmp_path: Path) -> None:
    entries = write_entries(tmp_path)
    write_module(entries, "payments/handlers.py", HANDLER.replace("charged", "module"))
    write_module(entries, "payments/handlers/__init__.py")
    rev, _ = charge_revision(entries)
    assert rev.source_name == "payments/handlers/__init__.py"
    assert rev.source == HANDLER


def test_python_paths_are_searched_in_order_instead_of_the_entries_directory(tmp_path: Path) -> None:
    entries = write_entries(tmp_path)
    write_module(entries, "payments/handlers.py", HANDLER.replace("charged", "from_entries"))
    first, second = tmp_path / "first", tmp_path / "second"
    write_module(first, "payments/handlers.py", HANDLER.replace("charged", "from_first"))
    write_module(second, "payments/handlers.py", HANDLER.replace("charged", "from_second"))

    default, _ = charge_revision(entries)
    assert default.source is not None and "from_entries" in default.source  # default: the entries directory
    ordered, _ = charge_revision(entries, [first, second])
    assert ordered.source is not None and "from_first" in ordered.source
    reversed_, _ = charge_revision(entries, [second, first])
    assert reversed_.source is not None and "from_second" in reversed_.source
    assert len({default.digest, ordered.digest, reversed_.digest}) == 3
    # only in the second directory: found there
    (first / "payments" / "handlers.py").unlink()
    fallback, diagnostics = charge_revision(entries, [first, second])
    assert diagnostics == [] and fallback.digest == reversed_.digest


def test_a_missing_module_is_not_resolved_with_fc210_saying_where_it_looked(tmp_path: Path) -> None:
    entries = write_entries(tmp_path, handler="no_such_flowctl_module.sub:run")
    elsewhere = tmp_path / "handlers"
    elsewhere.mkdir()
    rev, diagnostics = charge_revision(entries, [elsewhere])
    assert [(d.code, d.severity, d.line) for d in diagnostics] == [("FC210", Severity.WARNING, 8)]
    assert str(elsewhere.name) in diagnostics[0].message
    assert "--python-path" in diagnostics[0].hint
    assert rev.handler_file is None and rev.source is None and rev.source_name is None
    # not resolved: the digest covers the entry alone, as for an entry without source
    assert rev.digest == compute_digest("app:charge", rev.data, None, {})


def test_an_installed_module_is_recorded_as_not_resolved_with_fc212(tmp_path: Path) -> None:
    entries = write_entries(tmp_path, handler="yaml:safe_load")  # PyYAML: installed, not on the python path
    rev, diagnostics = charge_revision(entries)
    assert [(d.code, d.severity) for d in diagnostics] == [("FC212", Severity.WARNING)]
    found = diagnostics[0]
    assert found.path == "entries[2].handler" and found.line == 8
    assert "installed but not on the python path" in found.message and "entries" in found.message
    assert "--python-path DIR" in found.hint and "yaml/__init__.py" in found.hint
    assert rev.handler_file is None
    # validate reports it too, as a warning: the tree stays valid (and fails only with --strict)
    report = validate_project([entries], cache_dir=None)
    assert report.ok and [d.code for d in report.warnings] == ["FC212"]
    assert not validate_project([entries], strict=True, cache_dir=None).ok
    # the worker's directory named explicitly: resolved, no warning
    site = tmp_path / "site"
    write_module(site, "yaml/__init__.py", "def safe_load(text):\n    return text\n")
    assert validate_project([entries], cache_dir=None, python_paths=[site]).diagnostics == []


def test_a_handler_file_that_is_not_utf8_is_not_resolved_with_fc212(tmp_path: Path) -> None:
    entries = write_entries(tmp_path)
    module = write_module(entries, "payments/handlers.py")
    module.write_bytes(b"# -*- coding: latin-1 -*-\nNAME = '\xe9'\n")
    rev, diagnostics = charge_revision(entries)
    assert [d.code for d in diagnostics] == ["FC212"]
    assert "not valid UTF-8" in diagnostics[0].message
    assert rev.handler_file is None


def test_diff_shows_the_changed_handler_and_registry_show_names_its_file(tmp_path: Path) -> None:
    entries = write_entries(tmp_path)
    module = write_module(entries, "payments/handlers.py")
    url = str(tmp_path / "registry.db")
    with open_store(url) as store:
        assert apply_tree([entries], store).ok
        applied = store.current("app:charge")
        assert applied is not None and applied.handler_file is not None
        old_sha = applied.handler_file.sha256
        assert applied.handler_file.sha256 == hashlib.sha256(module.read_bytes()).hexdigest()

        module.write_text(HANDLER.replace('order["total"]', 'order["total"] * 100'))
        plan = plan_tree([entries], store).plan
        assert plan is not None
        assert [(c.entry_id, c.action) for c in plan.changes if c.action is not Action.UNCHANGED] == [
            ("app:charge", Action.CHANGED)]
        change = next(c for c in plan.changes if c.entry_id == "app:charge")
        new_sha = hashlib.sha256(module.read_bytes()).hexdigest()
        text = unified_diff(change)
        assert f"handler payments/handlers.py sha256 {old_sha[:12]} -> {new_sha[:12]}\n" in text
        assert "--- registry/payments/handlers.py" in text and "+++ tree/payments/handlers.py" in text
        assert '-    return {"charged": order["total"]}' in text
        assert '+    return {"charged": order["total"] * 100}' in text

    found = show_entry(url, "app:charge")
    printed = "".join(out.text for out in shown(found, as_json=False))
    assert f"handler:  payments.handlers:charge -> payments/handlers.py sha256 {old_sha}\n" in printed
    assert "--- payments/handlers.py\n" + HANDLER in printed
    assert found.to_dict()["handler_file"] == {"path": "payments/handlers.py", "sha256": old_sha}


def test_a_handler_that_becomes_unresolvable_is_a_change_diff_explains(tmp_path: Path) -> None:
    entries = write_entries(tmp_path)
    write_module(entries, "payments/handlers.py")
    with open_store(str(tmp_path / "registry.db")) as store:
        assert apply_tree([entries], store).ok
        elsewhere = tmp_path / "empty"
        elsewhere.mkdir()
        diff = plan_tree([entries], store, python_paths=[elsewhere])
        assert diff.plan is not None
        assert [d.code for d in diff.check.diagnostics] == ["FC210"]
        change = next(c for c in diff.plan.changes if c.entry_id == "app:charge")
        assert change.action is Action.CHANGED
        assert "handler payments/handlers.py sha256 " in unified_diff(change)
        assert "-> not resolved on the python path\n" in unified_diff(change)
        # and nothing else is affected by the python path
        assert {c.entry_id for c in diff.plan.changes if c.action is Action.CHANGED} == {"app:charge"}


def test_check_tree_uses_the_python_paths_it_is_given(tmp_path: Path) -> None:
    entries = write_entries(tmp_path)
    outside = tmp_path / "src"
    write_module(outside, "payments/handlers.py")
    default = check_tree([entries], cache_dir=None)
    assert [d.code for d in default.diagnostics] == ["FC210"]
    assert default.revisions["app:charge"].handler_file is None
    explicit = check_tree([entries], cache_dir=None, python_paths=[outside])
    assert explicit.diagnostics == []
    handler_file = explicit.revisions["app:charge"].handler_file
    assert handler_file is not None and handler_file.path == "payments/handlers.py"


def test_lua_revisions_keep_their_digests(tmp_path: Path) -> None:
    entries = write_entries(tmp_path)
    write_module(entries, "payments/handlers.py")
    order = build_revisions(load_project([entries]))["app:order"]
    assert order.handler_file is None and "handler_file" not in order.to_dict()
    assert order.digest == compute_digest("app:order", order.data, ORDER_LUA, {})

"""`flowctl validate` and `flowctl schema export` through click's CliRunner: formats and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cli
from tests.support.paths import REPO

ROOT = REPO
ENTRIES = ROOT / "entries"
INVALID = ROOT / "tests" / "cases" / "invalid"


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli.main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


def example_entries() -> int:
    """How many entries the example project has (it grows; the count is not the point)."""
    return sum(p.read_text().count("\n  - name: ") for p in ENTRIES.glob("*.yaml"))


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the default cache (.flowctl/cache) lands in tmp_path


def test_valid_tree_text(tmp_path: Path) -> None:
    code, out = run("validate", str(ENTRIES), "--strict")
    assert code == 0
    assert out.startswith(f"ok: no problems in 1 file ({example_entries()} entries)")
    assert (tmp_path / ".flowctl" / "cache" / "lua").is_dir()  # created lazily by the first run


def test_problems_text() -> None:
    code, out = run("validate", str(INVALID / "saga_local_function_declared_after_use"))
    assert code == 1
    assert "wf.lua:12:9: FC405 error: undefined global `run_compensations`" in out
    assert "  at: entries[2].source" in out and "  hint: move `local run_compensations`" in out
    assert out.rstrip().endswith("1 error, 0 warnings in 1 file (4 entries)")


def test_json_format() -> None:
    code, out = run("validate", "--format", "json", str(INVALID / "yaml_bomb"))
    body = json.loads(out)
    assert code == 1 and body["ok"] is False
    (diag,) = body["diagnostics"]
    assert diag["code"] == "FC005" and diag["line"] == 1 and diag["severity"] == "error" and diag["hint"]
    assert set(diag) == {"file", "line", "col", "path", "code", "severity", "message", "hint"}


def test_github_format() -> None:
    code, out = run("validate", "--format", "github", str(INVALID / "forbidden_io"))
    assert code == 1
    first = out.splitlines()[0]
    assert first.startswith("::error file=") and ",line=2,col=" in first and "title=FC403::" in first
    assert "%0Ahint: " in first  # multi-line messages are escaped for workflow commands


def test_warnings_pass_unless_strict() -> None:
    case = str(INVALID / "os_time_in_workflow")
    assert run("validate", case)[0] == 0
    code, out = run("validate", case, "--strict")
    assert code == 1 and "FC404 warning" in out


def test_default_path_and_env_var(tmp_path: Path) -> None:
    code, out = run("validate")
    assert code == 1 and "entries:1:1: FC001" in out  # no ./entries in the empty cwd
    code, out = run("validate", env={"FLOWCTL_ENTRIES": str(ENTRIES)})
    assert code == 0 and f"{example_entries()} entries" in out


def test_usage_errors_exit_2() -> None:
    assert run("validate", "--format", "xml")[0] == 2
    assert run("validate", "--no-such-option")[0] == 2


def test_crash_exits_2_without_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    import registry.validate

    def boom(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(registry.validate, "validate_project", boom)
    result = CliRunner().invoke(cli.main, ["validate", str(ENTRIES)])
    assert result.exit_code == 2
    assert "internal error: RuntimeError: disk on fire" in result.output
    assert "Traceback" not in result.output


def test_no_cache_writes_nothing(tmp_path: Path) -> None:
    assert run("validate", str(ENTRIES), "--no-cache")[0] == 0
    assert not (tmp_path / ".flowctl").exists()


def test_unusable_cache_dir_is_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file, not a directory")
    assert run("validate", str(ENTRIES), "--cache-dir", str(tmp_path / "blocker" / "cache"))[0] == 0


def test_schema_export(tmp_path: Path) -> None:
    code, out = run("schema", "export", "schemas-out")
    assert code == 0
    written = sorted(p.name for p in (tmp_path / "schemas-out").iterdir())
    assert "entry-file.schema.json" in written and "temporal.schedule.schema.json" in written and len(written) == 11
    assert "catalog.json" in written
    schema = json.loads((tmp_path / "schemas-out" / "entry-file.schema.json").read_text())
    assert schema["$schema"].startswith("https://json-schema.org/draft/2020-12")
    assert "yaml-language-server: $schema=" in out


def test_schema_export_onto_a_file_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("x")
    code, out = run("schema", "export", "taken")
    assert code in (1, 2) and "Traceback" not in out


# -- random YAML documents never crash validate ---------------------------------------------------

_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12),
                     st.sampled_from(["app", "app:worker", "workflow.lua", "temporal.client", "file://x.lua",
                                      "1.0", "${env:X}", "10m", "main"]))
_json = st.recursive(_scalars, lambda kids: st.one_of(
    st.lists(kids, max_size=4),
    st.dictionaries(st.sampled_from(["version", "namespace", "entries", "name", "kind", "source", "meta",
                                     "modules", "imports", "client", "worker", "temporal", "x"]) | st.text(max_size=5),
                    kids, max_size=5)), max_leaves=25)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=_json, raw=st.text(max_size=60))
def test_random_yaml_never_crashes(tmp_path: Path, document: object, raw: str) -> None:
    case = tmp_path / "random"
    case.mkdir(exist_ok=True)
    (case / "a.yaml").write_text(yaml.safe_dump(document))
    (case / "b.yaml").write_text(raw)
    (case / "x.lua").write_text(raw)
    code, _out = run("validate", str(case), "--no-cache")
    assert code in (0, 1)

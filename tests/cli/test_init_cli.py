"""`flowctl init`: every example scaffolds, validates, passes its Lua tests, and is idempotent with --force;
every scaffolded YAML file is valid against the schema its yaml-language-server modeline names; one
example runs `flowctl dev --demo` for real."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from cli import main
from runner.dev.server import free_port
from runner.project.init import EXAMPLES
from tests.support.paths import EXAMPLES as REPO_ENTRIES
from tests.support.paths import REPO

MODELINE = re.compile(r"^# yaml-language-server: \$schema=(\S+)$", re.M)


def flowctl(cwd: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)


def snapshot(directory: Path) -> dict[str, str]:
    return {p.relative_to(directory).as_posix(): p.read_text(encoding="utf-8")
            for p in sorted(directory.rglob("*")) if p.is_file() and ".flowctl" not in p.parts}


def validate_against_modeline(yaml_file: Path) -> None:
    """Validate ``yaml_file`` with jsonschema against the schema its modeline names (beside it: the others)."""
    match = MODELINE.search(yaml_file.read_text(encoding="utf-8"))
    assert match, f"{yaml_file} has no yaml-language-server modeline"
    schema_file = (yaml_file.parent / match[1]).resolve()
    assert schema_file.is_file(), f"{yaml_file}: the modeline names {match[1]}, which does not exist"
    schemas = [json.loads(p.read_text()) for p in schema_file.parent.glob("*.schema.json")]
    registry = Registry().with_resources(
        (s["$id"], Resource.from_contents(s, default_specification=DRAFT202012)) for s in schemas)
    validator = Draft202012Validator(json.loads(schema_file.read_text()), registry=registry)
    errors = [e.message for e in validator.iter_errors(yaml.safe_load(yaml_file.read_text(encoding="utf-8")))]
    assert errors == [], yaml_file
    # and a wrong file is refused, so the check has teeth
    assert list(validator.iter_errors({"version": "1.0", "namespace": "x", "entries": [{"name": "a", "kind": "no"}]}))


@pytest.mark.temporal  # flowctl test starts Temporal's time-skipping test server
@pytest.mark.parametrize("example", EXAMPLES)
def test_each_example_scaffolds_validates_and_passes_its_tests(tmp_path: Path, example: str) -> None:
    runner = CliRunner()
    done = runner.invoke(main, ["init", str(tmp_path / "demo"), "--example", example, "--namespace", "shop"])
    assert done.exit_code == 0, done.output
    project = tmp_path / "demo"
    for path in ("entries/app.yaml", ".luarc.json", ".editor/lua/funcs.lua", ".editor/schemas/entry-file.schema.json",
                 ".editor/schemas/catalog.json", ".vscode/settings.json", ".pre-commit-config.yaml", ".gitignore"):
        assert (project / path).is_file(), path
    assert ".flowctl/" in (project / ".gitignore").read_text()
    entries = yaml.safe_load((project / "entries" / "app.yaml").read_text())
    assert entries["namespace"] == "shop"
    kinds = {e["kind"] for e in entries["entries"]}
    assert {"temporal.client", "temporal.worker", "workflow.lua", "function.lua"} <= kinds
    assert list((project / "entries").glob("*_test.lua"))
    settings = json.loads((project / ".vscode" / "settings.json").read_text())
    assert (project / next(iter(settings["yaml.schemas"]))).is_file()
    for yaml_file in (project / "entries").glob("*.yaml"):
        validate_against_modeline(yaml_file)

    validated = flowctl(project, "validate", "--strict")
    assert validated.returncode == 0, validated.stdout + validated.stderr
    tested = flowctl(project, "test")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert " passed" in tested.stdout and "failed" not in tested.stdout

    before = snapshot(project)
    refused = runner.invoke(main, ["init", str(project), "--example", example, "--namespace", "shop"])
    assert refused.exit_code == 1 and "already has" in refused.output and "--force" in refused.output
    assert snapshot(project) == before
    forced = runner.invoke(main, ["init", str(project), "--example", example, "--namespace", "shop", "--force"])
    assert forced.exit_code == 0, forced.output
    assert snapshot(project) == before  # idempotent


def test_init_refuses_bad_input_with_a_clear_error(tmp_path: Path) -> None:
    runner = CliRunner()
    bad = runner.invoke(main, ["init", str(tmp_path / "p"), "--namespace", "Not Valid"])
    assert bad.exit_code == 1 and "is not a namespace name" in bad.output and "Traceback" not in bad.output
    (tmp_path / "file").write_text("x")
    onto_file = runner.invoke(main, ["init", str(tmp_path / "file")])
    assert onto_file.exit_code != 0 and "Traceback" not in onto_file.output
    unknown = runner.invoke(main, ["init", str(tmp_path / "q"), "--example", "nope"])
    assert unknown.exit_code == 2 and "nope" in unknown.output


def test_init_json_lists_the_files(tmp_path: Path) -> None:
    done = CliRunner().invoke(main, ["init", str(tmp_path / "p"), "--example", "empty", "--json"])
    assert done.exit_code == 0, done.output
    body = json.loads(done.output)
    assert body["example"] == "empty" and body["namespace"] == "app"
    assert any(f.endswith("hello_test.lua") for f in body["files"])


def test_the_example_projects_modeline_resolves_to_the_repositorys_schemas() -> None:
    for yaml_file in REPO_ENTRIES.glob("*.yaml"):
        validate_against_modeline(yaml_file)


@pytest.mark.temporal  # starts its own Temporal dev server (~10 s)
def test_flowctl_dev_demo_runs_right_after_init(tmp_path: Path) -> None:
    assert flowctl(tmp_path, "init", "demo", "--example", "order").returncode == 0
    dev = flowctl(tmp_path / "demo", "dev", "--demo", "--port", str(free_port()), "--ui-port", "0")
    assert dev.returncode == 0, dev.stdout + dev.stderr
    assert "demo: " in dev.stdout and " completed" in dev.stdout and '"status": "shipped"' in dev.stdout

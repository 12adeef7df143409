"""registry/contracts.py: schemas refused at validate time, values checked with a JSON path and the rule."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from registry import contracts
from registry.contracts import (
    MAX_SCHEMA_DEPTH,
    ContractError,
    entry_violation,
    json_path_text,
    schema_problems,
    value_violation,
)
from registry.errors import ExitCode, FlowError
from tests.support.paths import REPO

ORDER = {
    "type": "object",
    "required": ["id", "lines"],
    "properties": {
        "id": {"type": "string"},
        "lines": {"type": "array", "items": {"$ref": "#/$defs/line"}},
        "ship to": {"type": "string"},
    },
    "$defs": {"line": {"type": "object", "required": ["qty"],
                       "properties": {"qty": {"type": "integer", "minimum": 1}}}},
}


def _nested(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


def _codes(schema: Any) -> list[tuple[str, tuple[str | int, ...]]]:
    return [(p.code, p.path) for p in schema_problems(schema)]


def test_enforceable_schemas_have_no_problem() -> None:
    assert _codes(ORDER) == []
    assert _codes(True) == [] and _codes(False) == [] and _codes({}) == []
    assert _codes({"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "string"}) == []
    anchored = {"$defs": {"id": {"$anchor": "ident", "type": "string"}}, "properties": {"a": {"$ref": "#ident"}}}
    assert _codes(anchored) == []
    with_ids = {"$id": "https://example.com/root", "$defs": {"a": {"$id": "sub", "$defs": {"b": {}},
                                                                   "$ref": "#/$defs/b"}}, "$ref": "sub"}
    assert _codes(with_ids) == [], "a $ref to an $id inside the schema is not another document"
    # a property named like a keyword is a subschema, and enum/const values are data, not schemas
    assert _codes({"properties": {"enum": {"$ref": "#/$defs/x"}}, "$defs": {"x": {}},
                   "enum": [{"$ref": "nowhere"}]}) == []


def test_a_ref_into_nowhere_is_fc117_at_the_ref() -> None:
    assert _codes({"properties": {"n": {"$ref": "#/$defs/count"}}}) == [("FC117", ("properties", "n", "$ref"))]
    assert _codes({"$ref": "#missing-anchor"}) == [("FC117", ("$ref",))]
    assert _codes({"properties": {"enum": {"$ref": "#/$defs/x"}}}) == [("FC117", ("properties", "enum", "$ref"))]


def test_other_documents_and_other_drafts_are_fc119() -> None:
    assert _codes({"$ref": "https://example.com/order.json"}) == [("FC119", ("$ref",))]
    assert _codes({"items": {"$ref": "order.json#/$defs/line"}}) == [("FC119", ("items", "$ref"))]
    assert _codes({"$schema": "http://json-schema.org/draft-07/schema#"}) == [("FC119", ("$schema",))]


def test_a_schema_that_breaks_the_meta_schema_is_fc110_at_the_keyword() -> None:
    assert _codes({"properties": {"n": {"type": "integr"}}}) == [("FC110", ("properties", "n", "type"))]
    assert _codes({"pattern": "([a-z]"}) == [("FC110", ("pattern",))]


@pytest.mark.parametrize("depth", [100, 5_000])
def test_an_absurdly_deep_schema_is_fc118_not_a_recursion_error(depth: int) -> None:
    problems = schema_problems(_nested(depth))
    assert [p.code for p in problems] == ["FC118"]
    assert str(MAX_SCHEMA_DEPTH) in problems[0].message and "$defs" in problems[0].hint


def test_the_deepest_schema_allowed_is_checked_and_enforced() -> None:
    schema = _nested(MAX_SCHEMA_DEPTH // 2 - 1)  # two levels per step, plus the innermost mapping
    assert schema_problems(schema) == []
    value: Any = "x"
    for _ in range(MAX_SCHEMA_DEPTH // 2 - 1):
        value = {"a": value}
    violation = value_violation(schema, value)
    assert violation is not None and violation.rule == "type"
    assert violation.path == "$" + ".a" * (MAX_SCHEMA_DEPTH // 2 - 1)


def test_a_violation_names_the_json_path_the_rule_and_its_place_in_the_schema() -> None:
    violation = value_violation(ORDER, {"id": "o-1", "lines": [{"qty": 2}, {"qty": 0}]})
    assert violation is not None
    assert violation.path == "$.lines[1].qty" and violation.parts == ("lines", 1, "qty")
    assert violation.rule == "minimum"
    assert violation.schema_path == "#/$defs/line/properties/qty/minimum"
    assert violation.describe() == ("at $.lines[1].qty: 0 is less than the minimum of 1 "
                                    "(schema rule `minimum` at #/$defs/line/properties/qty/minimum)")
    assert violation.to_dict()["path"] == "$.lines[1].qty"
    missing = value_violation(ORDER, {"lines": []})
    assert missing is not None and (missing.path, missing.rule) == ("$", "required") and "'id'" in missing.message
    odd_key = value_violation(ORDER, {"id": "o", "lines": [], "ship to": 3})
    assert odd_key is not None and odd_key.path == "$['ship to']"
    assert value_violation(ORDER, {"id": "o", "lines": [{"qty": 1}]}) is None
    assert value_violation(False, None) is not None and value_violation(True, {"any": 1}) is None


def test_no_input_is_checked_as_null() -> None:
    violation = value_violation({"type": "object"}, None)
    assert violation is not None and violation.rule == "type"
    assert value_violation({"type": ["object", "null"]}, None) is None


def test_long_values_are_cut_in_the_message() -> None:
    violation = value_violation({"type": "integer"}, "x" * 10_000)
    assert violation is not None and len(violation.message) <= contracts.MESSAGE_CHARS
    assert violation.message.endswith("…")


def test_a_value_too_deep_for_a_recursive_schema_is_a_violation_not_a_crash() -> None:
    tree = {"$defs": {"node": {"type": "object", "properties": {"kids": {"type": "array",
                                                                          "items": {"$ref": "#/$defs/node"}}}}},
            "$ref": "#/$defs/node"}
    value: Any = {}
    for _ in range(3_000):
        value = {"kids": [value]}
    violation = value_violation(tree, value)
    assert violation is not None and violation.rule == "depth"


def test_json_path_text() -> None:
    assert json_path_text(()) == "$"
    assert json_path_text(("a", 0, "b-c", "d")) == "$.a[0]['b-c'].d"


def test_entry_validators_are_compiled_once_per_revision(monkeypatch: pytest.MonkeyPatch) -> None:
    compiled: list[Any] = []
    real = contracts._compile

    def counting(schema: Any) -> Any:
        compiled.append(schema)
        return real(schema)

    monkeypatch.setattr(contracts, "_compile", counting)
    data = {"input_schema": {"type": "object", "required": ["n"]}}
    for _ in range(5):
        assert entry_violation("digest-a", data, "input_schema", {"n": 1}) is None
        assert entry_violation("digest-a", data, "input_schema", {}) is not None
    assert len(compiled) == 1
    assert entry_violation("digest-b", data, "input_schema", {}) is not None
    assert entry_violation("digest-b", data, "output_schema", "anything") is None  # no schema: no contract
    assert len(compiled) == 3
    broken = {"input_schema": {"$ref": "#/nowhere"}}
    assert entry_violation("digest-c", broken, "input_schema", 1) is None, "validate refuses it (FC117)"


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(contracts, "CACHE_SIZE", 3)
    for i in range(10):
        entry_violation(f"bounded-{i}", {"input_schema": {"type": "integer"}}, "input_schema", 1)
    assert len(contracts._cache) <= 3


def test_a_contract_error_is_a_user_error_with_the_path_and_a_hint() -> None:
    violation = value_violation(ORDER, {"id": 7, "lines": []})
    assert violation is not None
    error = ContractError("app:order", "input_schema", violation)
    assert isinstance(error, FlowError) and error.exit_code == ExitCode.PROBLEMS
    assert error.kind == "INVALID_INPUT"
    assert "app:order: the input does not match its input_schema at $.id" in error.message
    assert error.hint is not None and "$.id" in error.hint and "flowctl registry show app:order" in error.hint


def test_the_runner_sends_contract_failures_as_non_retryable_application_errors() -> None:
    from registry.revision import Revision
    from runner.temporal.failures import contract_failure, failure_from_temporal, to_application_error

    revision = Revision(entry_id="app:act", kind="function.lua", digest="d" * 64,
                        data={"name": "act", "kind": "function.lua", "output_schema": {"type": "integer"}},
                        source=None, source_name=None)
    assert contract_failure(revision, "output_schema", 3) is None
    assert contract_failure(revision, "input_schema", "anything") is None
    failure = contract_failure(revision, "output_schema", "three")
    assert failure is not None and failure.kind == "INVALID_OUTPUT" and not failure.retryable
    sent = to_application_error(failure)
    assert sent.type == "INVALID_OUTPUT" and sent.non_retryable and "$" in sent.message
    back = failure_from_temporal(sent)
    assert back.kind == "INVALID_OUTPUT" and back.details["rule"] == "type"


#: A pattern Python's backtracking ``re`` needs minutes for on 34 "a"s and a "!" (and for ever on 5,000).
CATASTROPHIC = "^(a+)+$"
#: Checks CATASTROPHIC against such inputs through every keyword that matches patterns; prints the rules.
_HOSTILE_CHECK = f"""
from registry.contracts import value_violation
text = "a" * 5000 + "!"
schemas = [{{"type": "string", "pattern": {CATASTROPHIC!r}}},
           {{"type": "object", "patternProperties": {{{CATASTROPHIC!r}: {{"type": "integer"}}}}}},
           {{"type": "object", "patternProperties": {{{CATASTROPHIC!r}: {{}}}}, "additionalProperties": False}}]
values = [text, {{text: 1}}, {{text: 1}}]
print(" ".join(str(value_violation(s, v) and value_violation(s, v).rule) for s, v in zip(schemas, values)))
"""


def test_patterns_run_in_linear_time_so_no_input_stalls_a_worker() -> None:
    """A worker checks contracts inside a workflow task: a backtracking pattern would stall it (RE2 does not)."""
    done = subprocess.run([sys.executable, "-c", _HOSTILE_CHECK], cwd=REPO, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["pattern", "None", "additionalProperties"], done.stdout


@pytest.mark.parametrize(("schema", "where"), [
    ({"type": "string", "pattern": r"^(\w)\1$"}, ("pattern",)),
    ({"patternProperties": {"^(?!x-)": {}}}, ("patternProperties", "^(?!x-)")),
    ({"patternProperties": {"^x-": {}}, "unevaluatedProperties": False}, ("unevaluatedProperties",)),
])
def test_what_re2_cannot_run_is_refused_at_validate_time(schema: dict[str, Any], where: tuple[str, ...]) -> None:
    (problem,) = schema_problems(schema)
    assert problem.code == "FC128" and problem.path == where and problem.hint


@pytest.mark.parametrize(("schema", "where"), [
    ({"$ref": "#/$defs/a", "$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}}, ("$defs", "b", "$ref")),
    ({"allOf": [{"$ref": "#"}]}, ("allOf", 0, "$ref")),
])
def test_a_ref_loop_that_never_steps_into_the_value_is_refused(schema: dict[str, Any], where: tuple[Any, ...]) -> None:
    (problem,) = schema_problems(schema)
    assert problem.code == "FC117" and problem.path == where and "loop" in problem.message


def test_recursive_schemas_that_step_into_the_value_are_fine() -> None:
    tree = {"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#"}}}}
    linked = {"$ref": "#/$defs/n", "$defs": {"n": {"anyOf": [{"type": "null"}, {
        "type": "object", "properties": {"next": {"$ref": "#/$defs/n"}}}]}}}
    assert schema_problems(tree) == [] and schema_problems(linked) == []
    assert value_violation(tree, {"children": [{"children": []}]}) is None
    assert value_violation(linked, {"next": {"next": None}}) is None
    assert value_violation(linked, {"next": 3}) is not None

"""The embedded engine: module loading, operators' modules, failing closed, threads."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from regopy import Interpreter

from policies import EmbeddedEngine, PolicyEngine, PolicyError, PolicyInvalid
from policies.modules import DECISION_ENTRYPOINT, policy_modules, shipped_modules
from policies.rego_worker import raw_decision

Doc = dict[str, Any]


def operator_engine(tmp_path: Path, **modules: str) -> EmbeddedEngine:
    for name, source in modules.items():
        (tmp_path / f"{name}.rego").write_text(source)
    return EmbeddedEngine(tmp_path)


def module(body: str) -> str:
    return f"package veil.authz\n\nimport rego.v1\n\n{body}\n"


def test_engine_is_a_policy_engine(engine: EmbeddedEngine) -> None:
    assert isinstance(engine, PolicyEngine)


def test_shipped_modules_exclude_tests() -> None:
    names = [name for name, _ in shipped_modules()]
    assert "policies/authz.rego" in names
    assert "policies/obligations.rego" in names
    assert not [name for name in names if name.endswith("_test.rego")]


def test_every_shipped_module_has_tests() -> None:
    shipped = Path(__file__).resolve().parents[2] / "policies"
    for name, _ in shipped_modules():
        assert (shipped / name.removeprefix("policies/").replace(".rego", "_test.rego")).exists()


def test_operator_modules_load_recursively_without_tests(tmp_path: Path) -> None:
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "freeze.rego").write_text(module('deny contains "frozen" if true'))
    (tmp_path / "freeze_test.rego").write_text("this is not rego")
    (tmp_path / "README.md").write_text("not a module")
    names = [name for name, _ in policy_modules(tmp_path)]
    assert names[-1] == str(tmp_path / "nested" / "freeze.rego")
    assert not [name for name in names if name.endswith("_test.rego")]


def test_operator_deny_applies(tmp_path: Path, base_input: Doc) -> None:
    engine = operator_engine(
        tmp_path,
        night=module('deny contains "outside_hours" if input.principal.org == "acme"'),
    )
    decision = engine.decide(base_input)
    assert decision.allow is False
    assert decision.reasons == ("outside_hours",)
    base_input["principal"]["org"] = "other"
    assert engine.decide(base_input).allow


def test_operator_floor_raises_min_distinct_units(tmp_path: Path, base_input: Doc) -> None:
    engine = operator_engine(
        tmp_path,
        health=module(
            "min_distinct_units_floor contains 50 if {\n"
            '\tsome a in input.resource.assets\n\ta.domain == "health"\n}'
        ),
    )
    decision = engine.decide(base_input)
    assert decision.allow
    assert decision.obligations.min_distinct_units == 50


def test_a_repeated_input_is_decided_again_by_the_modules_in_force(
    tmp_path: Path, base_input: Doc
) -> None:
    """Repeats within a second reuse the evaluation, each with an id of its own; a reload
    with new modules is obeyed at once."""
    engine = operator_engine(tmp_path, quiet=module('deny contains "never" if false'))
    first, again = engine.decide(base_input), engine.decide(base_input)
    assert first == again and first.allow
    assert first.decision_id != again.decision_id
    (tmp_path / "quiet.rego").write_text(
        module('deny contains "outside_hours" if input.principal.org == "acme"')
    )
    engine.reload()
    assert engine.decide(base_input).reasons == ("outside_hours",)


def test_missing_operator_dir_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as raised:
        EmbeddedEngine(tmp_path / "absent")
    assert raised.value.code == "POLICY_UNAVAILABLE"


def test_syntax_error_refused_at_construction(tmp_path: Path) -> None:
    with pytest.raises(PolicyError):
        operator_engine(tmp_path, broken=module("deny contains if {"))


@pytest.mark.xfail(strict=True, reason="rego-cpp 1.5.2 compiles unsafe variables that OPA rejects")
def test_unsafe_rule_refused_at_construction(tmp_path: Path) -> None:
    with pytest.raises(PolicyError):
        operator_engine(tmp_path, unsafe=module('deny contains x if x != "a"'))


def test_unconditional_conflict_refused_at_construction(tmp_path: Path) -> None:
    with pytest.raises(PolicyError):
        operator_engine(tmp_path, override=module('decision := {"allow": true}'))


def test_module_that_crashes_the_compiler_refused(tmp_path: Path) -> None:
    # rego-cpp 1.5.2 aborts on this; the compile probe turns that into a PolicyError.
    crash = module("n := count(input.grants)\n\nprobe if {\n\tn == 0 with input as {}\n}")
    with pytest.raises(PolicyError):
        operator_engine(tmp_path, crash=crash)


def test_module_that_crashes_when_deciding_refused(tmp_path: Path) -> None:
    """time.clock with a time zone aborts rego-cpp next to DuckDB; only an L4 request reaches it."""
    crash = module(
        'deny contains "late" if {\n'
        "\tsome asset in input.resource.assets\n"
        '\tasset.classification == "L4"\n'
        '\ttime.clock([time.now_ns(), "Asia/Shanghai"])[0] > 25\n'
        "}"
    )
    with pytest.raises(PolicyInvalid, match="crash"):
        operator_engine(tmp_path, crash=crash)


def test_conflicting_rule_denies_at_evaluation(tmp_path: Path, base_input: Doc) -> None:
    override = module(
        'decision := {"allow": true, "reasons": [], "grant_id": null} if {\n'
        '\tinput.principal.org == "mallory"\n}'
    )
    engine = operator_engine(tmp_path, override=override)
    assert engine.decide(base_input).allow
    base_input["principal"]["org"] = "mallory"
    decision = engine.decide(base_input)
    assert decision.allow is False
    assert decision.reasons == ("policy_error",)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('deny contains 42 if input.principal.org == "mallory"', "invalid_decision"),
        (
            'deny contains sprintf("patient %v", [input.principal.org]) if '
            'input.principal.org == "mallory"',
            "invalid_decision",
        ),
        (
            'min_distinct_units_floor contains "many" if input.principal.org == "mallory"',
            "policy_incomplete",
        ),
    ],
)
def test_malformed_operator_output_denies(
    tmp_path: Path, base_input: Doc, body: str, reason: str
) -> None:
    engine = operator_engine(tmp_path, bad=module(body))
    assert engine.decide(base_input).allow
    base_input["principal"]["org"] = "mallory"
    decision = engine.decide(base_input)
    assert decision.allow is False
    assert decision.reasons == (reason,)


def test_unencodable_input_denies(engine: EmbeddedEngine, base_input: Doc) -> None:
    base_input["request"]["purpose"] = float("nan")
    assert engine.decide(base_input).reasons == ("policy_error",)
    assert engine.decide({"scope": object()}).reasons == ("policy_error",)  # type: ignore[dict-item]


def test_undefined_output_is_none() -> None:
    interpreter = Interpreter()
    interpreter.add_module("empty.rego", "package veil.authz\n\nother := 1\n")
    bundle = interpreter.build(None, [DECISION_ENTRYPOINT])
    interpreter.set_input_term("{}")
    assert raw_decision(interpreter.query_bundle_entrypoint(bundle, DECISION_ENTRYPOINT)) is None


def test_concurrent_decisions_stay_separate(engine: EmbeddedEngine, base_input: Doc) -> None:
    denied = json.loads(json.dumps(base_input))
    denied["principal"]["status"] = "suspended"
    inputs = [base_input, denied] * 40
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(engine.decide, inputs))
    assert [d.allow for d in results] == [True, False] * 40
    assert {d.reasons for d in results[1::2]} == {("principal_inactive",)}


def test_policies_imports_no_other_package() -> None:
    probe = (
        "import sys, policies; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'fastapi', 'gateway', 'sandbox', 'ledger'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"

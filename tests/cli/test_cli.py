"""The `veil` command's stable interface: init once, verify, and helpful failures."""

from __future__ import annotations

import json
import subprocess
import sys

VEIL = [sys.executable, "-m", "gateway.cli"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*VEIL, *args], capture_output=True, text=True, timeout=120)


def test_init_prints_the_admin_key_once(tmp_path) -> None:
    home = tmp_path / "home"
    first = _run("init", "--home", str(home))
    assert first.returncode == 0, first.stderr
    assert set(json.loads(first.stdout)) == {"admin_key"}
    assert (home / "keys" / "master.key").stat().st_mode & 0o777 == 0o600
    second = _run("init", "--home", str(home))
    assert second.returncode == 1 and "admin_key" not in second.stdout
    verified = _run("ledger", "verify", "--home", str(home))
    assert verified.returncode == 0 and json.loads(verified.stdout)["ok"] is True


def test_verify_without_a_home_fails(tmp_path) -> None:
    assert _run("ledger", "verify", "--home", str(tmp_path / "none")).returncode == 2


def test_query_without_a_key_fails() -> None:
    result = subprocess.run(
        [*VEIL, "query", "SELECT 1"], capture_output=True, text=True, timeout=60, env={}
    )
    assert result.returncode == 2 and "VEIL_API_KEY" in result.stderr


FLOOR = """package veil.authz

import rego.v1

min_distinct_units_floor contains 50 if input.principal.org == "Untrusted Ltd."
"""
FLOOR_TEST = """package veil.authz

import rego.v1

test_l4_floor if {
\t50 in min_distinct_units_floor with input as {"principal": {"org": "Untrusted Ltd."}}
}
"""


def test_policy_check_and_test_run_operator_modules(tmp_path) -> None:
    (tmp_path / "floor.rego").write_text(FLOOR)
    (tmp_path / "floor_test.rego").write_text(FLOOR_TEST)
    assert _run("policy", "check", "--dir", str(tmp_path)).returncode == 0
    tested = _run("policy", "test", "--dir", str(tmp_path))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    (tmp_path / "floor_test.rego").write_text(FLOOR_TEST.replace("50 in", "51 in"))
    assert _run("policy", "test", "--dir", str(tmp_path)).returncode != 0
    (tmp_path / "broken.rego").write_text("package veil.authz\n\nthis is not rego\n")
    assert _run("policy", "check", "--dir", str(tmp_path)).returncode != 0


def test_readme_policy_example_runs_in_both_engines(tmp_path) -> None:
    """The operator example in the README compiles, passes its tests under OPA, and decides."""
    import copy
    from pathlib import Path

    from policies import EmbeddedEngine
    from policies.embedded import TRIAL_INPUT

    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text()
    example = readme[readme.index("### Adding a rule") :].split("```rego\n", 1)[1].split("```")[0]
    (tmp_path / "office.rego").write_text(example)
    (tmp_path / "office_test.rego").write_text(
        (Path(__file__).parent / "readme_example_test.rego").read_text()
    )
    assert _run("policy", "check", "--dir", str(tmp_path)).returncode == 0
    tested = _run("policy", "test", "--dir", str(tmp_path))
    assert tested.returncode == 0 and "PASS: 3/3" in tested.stdout, tested.stdout + tested.stderr
    (tmp_path / "office_test.rego").unlink()
    engine = EmbeddedEngine(tmp_path)
    document = copy.deepcopy(TRIAL_INPUT)
    document["resource"]["assets"][0]["classification"] = "L4"
    document["now"] = "2026-11-22T15:00:00Z"
    assert engine.decide(document).reasons == ("outside_office_hours",)
    document["now"] = "2026-11-22T02:00:00Z"
    assert engine.decide(document).allow

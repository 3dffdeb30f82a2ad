"""Policies: which Rego modules decide now, and reloading them without a restart."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import policies as shipped_policies
from governance import utc_now
from policies import PolicyInvalid, PolicySet
from services.authorisation import Permit
from services.errors import Invalid
from services.runtime import Services


def policy_view(veil: Services, policy_set: PolicySet) -> dict:
    engine = veil.settings.policy_engine
    return {"engine": engine, "modules": list(policy_set.modules), "digest": policy_set.digest}


def reload_policies(veil: Services, *, permit: Permit) -> dict:
    """Recompile the modules on disk and record it; if they are broken, the previous ones keep
    deciding."""
    try:
        policy_set = veil.policy.reload()
    except PolicyInvalid as exc:
        raise Invalid(
            "the policy modules do not compile or cannot decide; the previous ones still decide",
            code="POLICY_INVALID",
        ) from exc
    at = utc_now()
    receipt = veil.ledger.append(
        {
            "type": "policy_loaded",
            "engine": veil.settings.policy_engine,
            "modules": list(policy_set.modules),
            "digest": policy_set.digest,
            "by": permit.caller.id,
            "decision_id": permit.decision.decision_id,
            "at": at,
        },
        idempotency_key=f"policy:{policy_set.digest}:{at}",
    )
    return dict(
        policy_view(veil, policy_set),
        receipt={"ledger_index": receipt.index, "leaf_hash": receipt.leaf_hash},
    )


@dataclass(frozen=True)
class PolicyTests:
    """A run of the Rego unit tests under OPA: how many passed, which failed."""

    ran: bool  # False where no OPA binary is installed
    passed: int
    failed: list[str]


def rego_paths(policy_dir: Path | None) -> list[str]:
    """The shipped modules and test fixtures, then the operator's directory.

    Operators' tests run with the shipped fixtures but not the shipped tests, which assert the
    shipped behaviour an operator's rules may change on purpose."""
    shipped = Path(shipped_policies.__file__).parent
    if policy_dir is None:
        return [str(shipped)]
    paths = [
        str(path)
        for path in sorted(shipped.glob("*.rego"))
        if not path.name.endswith("_test.rego") or path.name == "fixtures_test.rego"
    ]
    return [*paths, str(policy_dir)]


def opa_binary() -> str | None:
    return shutil.which("opa") or shutil.which(str(Path.home() / ".cache/veil/bin/opa"))


def run_policy_tests(veil: Services, *, permit: Permit) -> PolicyTests:
    """The operator's tests (the shipped ones when it has none) against the modules on disk."""
    binary = opa_binary()
    if binary is None:
        return PolicyTests(False, 0, [])
    run = subprocess.run(
        [binary, "test", "--format=json", *rego_paths(veil.settings.policy_dir)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    try:
        results = json.loads(run.stdout or "[]")
    except ValueError:
        return PolicyTests(True, 0, ["the tests could not be run: the modules do not compile"])
    failed = [f"{r.get('package', '')}.{r.get('name', '')}" for r in results
              if r.get("fail") or r.get("error")]  # fmt: skip
    return PolicyTests(True, len(results) - len(failed), failed)

"""The policy-engine contract: decisions, obligations and strict parsing of raw Rego output."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

log = logging.getLogger(__name__)

INVALID_DECISION = "invalid_decision"
UNDEFINED_DECISION = "undefined_decision"
POLICY_ERROR = "policy_error"
# The reasons of an engine that could not decide: the request was denied, but not for it.
ENGINE_FAILURES = frozenset({POLICY_ERROR, INVALID_DECISION, UNDEFINED_DECISION})

# Plan names are the operator's; asset cards price them, and "free" is always metered at zero.
PRICE_PLAN = re.compile(r"[a-z][a-z0-9_]{0,31}")
# An obligation the gateway does not know cannot be enforced, so unknown values are invalid.
REVIEW_MODES = frozenset({"auto", "manual"})
MIN_DISTINCT_UNITS_FLOOR = 2

# Reasons reach the ledger and the client, so only short codes may pass, never data values.
_REASON = re.compile(r"[a-z][a-z0-9_]{0,63}")
_DECISION_FIELDS = ("allow", "reasons", "grant_id", "obligations")
_OBLIGATION_FIELDS = frozenset({"min_distinct_units", "max_rows", "noise", "price_plan", "review"})


class PolicyError(Exception):
    """The policy engine cannot decide at all (bad modules, unreachable server)."""

    code = "POLICY_UNAVAILABLE"


class PolicyInvalid(PolicyError):
    """The policy modules do not compile or cannot produce a valid decision."""


@dataclass(frozen=True)
class Noise:
    """How answers about persons are protected: differential privacy, with ε and δ per query
    and per asset per month for one developer organisation and for all of them (the cap), or
    thresholds alone, which the shipped policy allows only for listed non-personal assets."""

    mode: str
    epsilon: float = 1.0
    delta: float = 1e-7
    epsilon_per_period: float = 10.0
    delta_per_period: float = 1e-5
    cap_epsilon_per_period: float = 50.0
    cap_delta_per_period: float = 1e-4

    @property
    def private(self) -> bool:
        return self.mode == "dp"


DP_DEFAULT = Noise("dp")
THRESHOLDS = Noise("thresholds")
# Each DP term with the widest value a decision may carry.
_NOISE_LIMITS = {
    "epsilon": 10.0,
    "delta": 1e-4,
    "epsilon_per_period": 10.0**6,
    "delta_per_period": 1e-2,
    "cap_epsilon_per_period": 10.0**6,
    "cap_delta_per_period": 1e-1,
}


@dataclass(frozen=True)
class Obligations:
    """What the enclave must enforce when it runs an allowed request."""

    min_distinct_units: int
    max_rows: int
    noise: Noise
    price_plan: str
    review: str


# The strictest table value; used whenever the policy itself gave no usable obligations.
FAIL_CLOSED_OBLIGATIONS = Obligations(
    min_distinct_units=20, max_rows=1000, noise=DP_DEFAULT, price_plan="sensitive", review="manual"
)


@dataclass(frozen=True)
class Decision:
    """One authorisation decision: allow or deny with reason codes, grant and obligations."""

    allow: bool
    reasons: tuple[str, ...]
    grant_id: str | None
    obligations: Obligations
    # Names the evaluation in the ledger (OPA's own id when its decision log is on).
    decision_id: str | None = field(default=None, compare=False)

    @classmethod
    def deny(cls, reason: str) -> Decision:
        return cls(False, (reason,), None, FAIL_CLOSED_OBLIGATIONS)


@dataclass(frozen=True)
class PolicySet:
    """The modules an engine decides with, and one digest over their names and sources."""

    modules: tuple[str, ...]
    digest: str

    @classmethod
    def of(cls, modules: list[tuple[str, str]]) -> PolicySet:
        ordered = sorted(modules)
        text = json.dumps(ordered, ensure_ascii=False, separators=(",", ":"))
        return cls(tuple(name for name, _ in ordered), hashlib.sha256(text.encode()).hexdigest())


@runtime_checkable
class PolicyEngine(Protocol):
    """Evaluates data.veil.authz.decision for one input; denies instead of raising."""

    def decide(self, input: dict[str, Any]) -> Decision: ...

    def ready(self) -> bool: ...

    def loaded(self) -> PolicySet:
        """The modules deciding now; raises PolicyError when that cannot be known."""
        ...

    def reload(self) -> PolicySet:
        """Load the modules afresh; on PolicyError the previous modules keep deciding."""
        ...


class MalformedDecision(ValueError):
    """The policy's decision document breaks the contract."""


def parse_decision(raw: object) -> Decision:
    """Validate a raw decision document; anything malformed becomes a denial.

    None stands for an undefined decision.
    """
    if raw is None:
        return Decision.deny(UNDEFINED_DECISION)
    try:
        return validate_decision(raw)
    except MalformedDecision as exc:
        log.warning("policy returned a malformed decision: %s", exc)
        return Decision.deny(INVALID_DECISION)


def validate_decision(raw: object) -> Decision:
    """Like parse_decision, but raises MalformedDecision instead of denying."""
    doc = _object(raw, "decision")
    missing = [name for name in _DECISION_FIELDS if name not in doc]
    if missing:
        raise MalformedDecision(f"decision lacks {', '.join(missing)}")
    allow = doc["allow"]
    if not isinstance(allow, bool):
        raise MalformedDecision("allow is not a boolean")
    reasons = _reasons(doc["reasons"])
    if allow and reasons:
        raise MalformedDecision("an allowed decision gives reasons")
    if not allow and not reasons:
        raise MalformedDecision("a denied decision gives no reason")
    grant_id = doc["grant_id"]
    if grant_id is not None and (not isinstance(grant_id, str) or not grant_id):
        raise MalformedDecision("grant_id is neither null nor a non-empty string")
    return Decision(allow, reasons, grant_id, _obligations(doc["obligations"]))


def _reasons(raw: object) -> tuple[str, ...]:
    if not isinstance(raw, list):
        raise MalformedDecision("reasons is not a list")
    for reason in raw:
        if not isinstance(reason, str) or not _REASON.fullmatch(reason):
            raise MalformedDecision("a reason is not a snake_case code")
    return tuple(raw)


def _obligations(raw: object) -> Obligations:
    doc = _object(raw, "obligations")
    if set(doc) != _OBLIGATION_FIELDS:
        raise MalformedDecision(f"obligations must be exactly {sorted(_OBLIGATION_FIELDS)}")
    units = _integer(doc["min_distinct_units"], "min_distinct_units")
    if units < MIN_DISTINCT_UNITS_FLOOR:
        raise MalformedDecision(f"min_distinct_units is below {MIN_DISTINCT_UNITS_FLOOR}")
    max_rows = _integer(doc["max_rows"], "max_rows")
    if max_rows < 1:
        raise MalformedDecision("max_rows is below 1")
    noise = _noise(doc["noise"])
    price_plan = doc["price_plan"]
    if not isinstance(price_plan, str) or not PRICE_PLAN.fullmatch(price_plan):
        raise MalformedDecision("price_plan is not a snake_case plan name")
    review = _choice(doc["review"], REVIEW_MODES, "review")
    return Obligations(units, max_rows, noise, price_plan, review)


def _noise(raw: object) -> Noise:
    """The noise obligation; null means the default, differential privacy."""
    if raw is None:
        return DP_DEFAULT
    doc = _object(raw, "noise")
    if doc == {"mode": "thresholds"}:
        return THRESHOLDS
    if doc.get("mode") != "dp" or set(doc) != {"mode", *_NOISE_LIMITS}:
        raise MalformedDecision(
            f'noise is {{"mode": "thresholds"}} or "dp" with exactly {sorted(_NOISE_LIMITS)}'
        )
    terms = {}
    for name, widest in _NOISE_LIMITS.items():
        value = doc[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise MalformedDecision(f"noise.{name} is not a number")
        if not (0 < value <= widest):
            raise MalformedDecision(f"noise.{name} is outside (0, {widest}]")
        terms[name] = float(value)
    return Noise("dp", **terms)


def _object(raw: object, name: str) -> dict[str, Any]:
    if not isinstance(raw, dict) or not all(isinstance(key, str) for key in raw):
        raise MalformedDecision(f"{name} is not an object")
    return raw


def _choice(raw: object, allowed: frozenset[str], name: str) -> str:
    if not isinstance(raw, str) or raw not in allowed:
        raise MalformedDecision(f"{name} is not one of {sorted(allowed)}")
    return raw


def _integer(raw: object, name: str) -> int:
    # bool is an int subclass; a policy answering true for a count is a bug, not a 1.
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise MalformedDecision(f"{name} is not an integer")
    return raw


def with_decision_id(decision: Decision, decision_id: str | None = None) -> Decision:
    """The decision stamped with the engine's id for it, or a fresh one."""
    return replace(decision, decision_id=decision_id or uuid.uuid4().hex)

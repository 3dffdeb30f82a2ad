"""Strict validation of raw decision documents: anything malformed denies."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from policies import DP_DEFAULT, Decision, Noise, Obligations, parse_decision

VALID: dict[str, Any] = {
    "allow": True,
    "reasons": [],
    "grant_id": "g_abc",
    "obligations": {
        "min_distinct_units": 10,
        "max_rows": 10000,
        "noise": None,
        "price_plan": "standard",
        "review": "auto",
    },
}


def variant(path: str, value: Any) -> dict[str, Any]:
    """VALID with one field (dotted path) set to value, or removed when value is ...."""
    doc = copy.deepcopy(VALID)
    *parents, leaf = path.split(".")
    target = doc
    for name in parents:
        target = target[name]
    if value is ...:
        del target[leaf]
    else:
        target[leaf] = value
    return doc


def assert_invalid(raw: object) -> None:
    decision = parse_decision(raw)
    assert decision.allow is False
    assert decision.reasons == ("invalid_decision",)
    assert decision.grant_id is None
    assert decision.obligations.min_distinct_units >= 10


def test_valid_allow() -> None:
    assert parse_decision(VALID) == Decision(
        True, (), "g_abc", Obligations(10, 10000, DP_DEFAULT, "standard", "auto")
    )


def test_valid_deny() -> None:
    raw = {**VALID, "allow": False, "reasons": ["grant_expired"], "grant_id": None}
    decision = parse_decision(raw)
    assert (decision.allow, decision.reasons, decision.grant_id) == (
        False,
        ("grant_expired",),
        None,
    )


def test_undefined_decision_denies() -> None:
    decision = parse_decision(None)
    assert decision.allow is False
    assert decision.reasons == ("undefined_decision",)


DP_TERMS = {
    "mode": "dp",
    "epsilon": 0.5,
    "delta": 1e-8,
    "epsilon_per_period": 5,
    "delta_per_period": 1e-6,
    "cap_epsilon_per_period": 20,
    "cap_delta_per_period": 1e-5,
}


def test_noise_terms_read() -> None:
    noise = parse_decision(variant("obligations.noise", DP_TERMS)).obligations.noise
    assert noise == Noise("dp", 0.5, 1e-8, 5.0, 1e-6, 20.0, 1e-5) and noise.private
    thresholds = parse_decision(variant("obligations.noise", {"mode": "thresholds"}))
    assert not thresholds.obligations.noise.private


def test_null_noise_is_differential_privacy() -> None:
    assert parse_decision(variant("obligations.noise", None)).obligations.noise == DP_DEFAULT


@pytest.mark.parametrize(
    "noise",
    [
        {"mechanism": "laplace", "epsilon": 1.0},
        {"mode": "none"},
        {"mode": "thresholds", "epsilon": 1.0},
        {**DP_TERMS, "epsilon": 0},
        {**DP_TERMS, "epsilon": -1},
        {**DP_TERMS, "epsilon": 11},
        {**DP_TERMS, "epsilon": "1"},
        {**DP_TERMS, "epsilon": True},
        {**DP_TERMS, "delta": 0.5},
        {**DP_TERMS, "cap_epsilon_per_period": float("inf")},
        {k: v for k, v in DP_TERMS.items() if k != "delta"},
        {**DP_TERMS, "extra": 1},
    ],
)
def test_malformed_noise_fails_closed(noise: dict) -> None:
    assert_invalid(variant("obligations.noise", noise))


def test_unknown_top_level_field_ignored() -> None:
    assert parse_decision({**VALID, "audit": {"rule": "x"}}).allow is True


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("allow", ...),
        ("reasons", ...),
        ("grant_id", ...),
        ("obligations", ...),
        ("allow", "true"),
        ("allow", 1),
        ("allow", None),
        ("reasons", "grant_expired"),
        ("reasons", ["grant_expired"]),
        ("reasons", [42]),
        ("reasons", ["patient Zhang San is 93"]),
        ("reasons", ["x" * 65]),
        ("grant_id", 7),
        ("grant_id", ""),
        ("obligations", None),
        ("obligations", []),
        ("obligations.min_distinct_units", ...),
        ("obligations.min_distinct_units", 1),
        ("obligations.min_distinct_units", 0),
        ("obligations.min_distinct_units", -10),
        ("obligations.min_distinct_units", 10.0),
        ("obligations.min_distinct_units", "10"),
        ("obligations.min_distinct_units", True),
        ("obligations.max_rows", 0),
        ("obligations.max_rows", None),
        ("obligations.noise", "laplace"),
        ("obligations.noise", ...),
        ("obligations.price_plan", "Premium"),
        ("obligations.price_plan", "free plan"),
        ("obligations.price_plan", ""),
        ("obligations.price_plan", "x" * 33),
        ("obligations.price_plan", ["free"]),
        ("obligations.price_plan", None),
        ("obligations.review", "skip"),
        ("obligations.review", ...),
        ("obligations.surprise", 1),
    ],
)
def test_malformed_denies(path: str, value: Any) -> None:
    assert_invalid(variant(path, value))


@pytest.mark.parametrize("raw", ["allow", 1, True, [], [VALID], {1: True}])
def test_not_an_object_denies(raw: object) -> None:
    assert_invalid(raw)


def test_deny_without_reason_is_malformed() -> None:
    assert_invalid({**VALID, "allow": False, "grant_id": None})

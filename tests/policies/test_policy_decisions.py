"""Decisions of the shipped policy for scope query:run, through the embedded engine."""

from __future__ import annotations

from typing import Any

import pytest

from policies import DP_DEFAULT, Decision, EmbeddedEngine, Obligations

Doc = dict[str, Any]


def with_grant(doc: Doc, **fields: Any) -> Doc:
    doc["grants"] = [{**doc["grants"][0], **fields}]
    return doc


def with_asset(doc: Doc, **fields: Any) -> Doc:
    doc["resource"]["assets"] = [{**doc["resource"]["assets"][0], **fields}]
    return doc


def add_asset(doc: Doc, asset_id: str, classification: str) -> Doc:
    doc["resource"]["assets"].append(
        {**doc["resource"]["assets"][0], "id": asset_id, "classification": classification}
    )
    doc["grants"][0]["assets"].append(asset_id)
    doc["grants"][0]["columns"] = None
    return doc


def assert_denied(decision: Decision, *reasons: str) -> None:
    assert decision.allow is False
    assert decision.reasons == reasons
    assert decision.grant_id is None


def test_allow(engine: EmbeddedEngine, base_input: Doc) -> None:
    decision = engine.decide(base_input)
    assert decision == Decision(
        allow=True,
        reasons=(),
        grant_id="g_abc",
        obligations=Obligations(
            min_distinct_units=10,
            max_rows=10000,
            noise=DP_DEFAULT,
            price_plan="free",
            review="auto",
        ),
    )


@pytest.mark.parametrize(("level", "units"), [("L1", 5), ("L2", 10), ("L3", 10), ("L4", 20)])
def test_min_distinct_units_by_classification(
    engine: EmbeddedEngine, base_input: Doc, level: str, units: int
) -> None:
    decision = engine.decide(with_asset(base_input, classification=level))
    assert decision.allow
    assert decision.obligations.min_distinct_units == units


def test_strictest_classification_wins(engine: EmbeddedEngine, base_input: Doc) -> None:
    doc = add_asset(add_asset(base_input, "lab.results", "L1"), "insurer.claims", "L4")
    decision = engine.decide(doc)
    assert decision.allow
    assert decision.obligations.min_distinct_units == 20


@pytest.mark.parametrize(
    ("purpose", "plan"),
    [("public_welfare", "free"), ("public_governance", "free"), ("credit_scoring", "standard")],
)
def test_price_plan_follows_grant_purpose(
    engine: EmbeddedEngine, base_input: Doc, purpose: str, plan: str
) -> None:
    base_input["request"]["purpose"] = None
    decision = engine.decide(with_grant(base_input, purpose=purpose))
    assert decision.allow
    assert decision.obligations.price_plan == plan


def test_l4_assets_take_the_sensitive_plan(engine: EmbeddedEngine, base_input: Doc) -> None:
    base_input["request"]["purpose"] = None
    doc = add_asset(with_grant(base_input, purpose="credit_scoring"), "insurer.claims", "L4")
    decision = engine.decide(doc)
    assert decision.allow
    assert decision.obligations.price_plan == "sensitive"
    assert decision.obligations.review == "auto"


def test_obligations_present_on_deny(engine: EmbeddedEngine, base_input: Doc) -> None:
    base_input["grants"] = []
    decision = engine.decide(base_input)
    assert_denied(decision, "no_covering_grant")
    assert decision.obligations == Obligations(10, 10000, DP_DEFAULT, "standard", "auto")


@pytest.mark.parametrize(
    ("part", "change", "reasons"),
    [
        ("principal", {"roles": ["provider"]}, ("not_a_developer",)),
        ("principal", {"status": "suspended"}, ("principal_inactive",)),
        ("grant", {"status": "revoked"}, ("grant_inactive",)),
        ("grant", {"valid_until": "2026-06-01T00:00:00Z"}, ("grant_expired",)),
        ("grant", {"valid_from": "2026-12-01T00:00:00Z"}, ("grant_not_yet_valid",)),
        ("grant", {"purpose": "marketing"}, ("purpose_mismatch",)),
        ("grant", {"methods": ["job"]}, ("method_not_granted",)),
        ("grant", {"assets": ["insurer.claims"], "columns": None}, ("asset_not_granted",)),
        ("grant", {"columns": {"hospital.visits": ["age"]}}, ("column_not_granted",)),
        ("grant", {"developer": "fintech"}, ("no_covering_grant",)),
        ("grant", {"valid_until": None}, ("grant_malformed",)),
        ("asset", {"status": "destroyed"}, ("asset_inactive",)),
        ("asset", {"classification": "L9"}, ("asset_unclassified",)),
        ("request", {"grant_id": "g_missing"}, ("grant_not_found",)),
        ("scope", "nothing:here", ("scope_not_covered",)),
        ("scope", "job:submit", ("invalid_input",)),
        ("now", "tomorrow", ("invalid_input",)),
    ],
)
def test_each_deny_reason(
    engine: EmbeddedEngine, base_input: Doc, part: str, change: Any, reasons: tuple[str, ...]
) -> None:
    if part == "grant":
        doc = with_grant(base_input, **change)
    elif part == "asset":
        doc = with_asset(base_input, **change)
    elif isinstance(change, dict):
        doc = base_input
        doc[part].update(change)
    else:
        doc = {**base_input, part: change}
    assert_denied(engine.decide(doc), *reasons)


def test_no_assets_denied(engine: EmbeddedEngine, base_input: Doc) -> None:
    base_input["resource"] = {"assets": [], "columns": {}}
    assert_denied(engine.decide(base_input), "no_assets")


def test_every_failure_is_reported(engine: EmbeddedEngine, base_input: Doc) -> None:
    base_input["principal"].update(roles=[], status="suspended")
    with_grant(base_input, status="revoked", methods=["job"])
    decision = engine.decide(base_input)
    assert_denied(
        decision, "grant_inactive", "method_not_granted", "not_a_developer", "principal_inactive"
    )


@pytest.mark.parametrize(
    "doc",
    [{}, {"scope": "query:run"}, {"scope": "query:run", "principal": "analyst"}],
)
def test_malformed_input_denied_with_a_reason(engine: EmbeddedEngine, doc: Doc) -> None:
    decision = engine.decide(doc)
    assert decision.allow is False
    assert decision.reasons


def test_smallest_covering_grant_chosen(engine: EmbeddedEngine, base_input: Doc) -> None:
    base_input["grants"] = [{**base_input["grants"][0], "id": "g_b"}, base_input["grants"][0]]
    assert engine.decide(base_input).grant_id == "g_abc"


def test_grant_id_pins_the_grant(engine: EmbeddedEngine, base_input: Doc) -> None:
    other = {**base_input["grants"][0], "id": "g_b", "purpose": "credit_scoring"}
    base_input["grants"].append(other)
    base_input["request"].update(grant_id="g_b", purpose=None)
    decision = engine.decide(base_input)
    assert decision.allow
    assert decision.grant_id == "g_b"
    assert decision.obligations.price_plan == "standard"


def test_pinned_grant_explains_its_own_denial(engine: EmbeddedEngine, base_input: Doc) -> None:
    expired = {**base_input["grants"][0], "id": "g_b", "valid_until": "2026-02-01T00:00:00Z"}
    base_input["grants"].append(expired)
    base_input["request"]["grant_id"] = "g_b"
    assert_denied(engine.decide(base_input), "grant_expired")


def test_pinning_another_developers_grant_is_not_found(
    engine: EmbeddedEngine, base_input: Doc
) -> None:
    base_input["grants"].append({**base_input["grants"][0], "id": "g_x", "developer": "fintech"})
    base_input["request"]["grant_id"] = "g_x"
    assert_denied(engine.decide(base_input), "grant_not_found")


def test_null_purpose_uses_the_grants(engine: EmbeddedEngine, base_input: Doc) -> None:
    base_input["request"]["purpose"] = None
    decision = engine.decide(base_input)
    assert decision.allow
    assert decision.obligations.price_plan == "free"


def test_purpose_mismatch_against_every_grant(engine: EmbeddedEngine, base_input: Doc) -> None:
    base_input["request"]["purpose"] = "credit_scoring"
    assert_denied(engine.decide(base_input), "purpose_mismatch")


def test_column_narrowing_allows_a_subset(engine: EmbeddedEngine, base_input: Doc) -> None:
    base_input["resource"]["columns"] = {"hospital.visits": ["age", "patient_id"]}
    with_grant(base_input, columns={"hospital.visits": ["age", "patient_id"]})
    assert engine.decide(base_input).allow


def test_column_outside_the_narrowing_denied(engine: EmbeddedEngine, base_input: Doc) -> None:
    with_grant(base_input, columns={"hospital.visits": ["age", "patient_id"]})
    assert_denied(engine.decide(base_input), "column_not_granted")


def test_narrowing_that_omits_an_asset_grants_none_of_it(
    engine: EmbeddedEngine, base_input: Doc
) -> None:
    with_grant(base_input, columns={"insurer.claims": ["amount"]})
    assert_denied(engine.decide(base_input), "column_not_granted")


def test_columns_of_an_undescribed_asset_are_invalid(
    engine: EmbeddedEngine, base_input: Doc
) -> None:
    base_input["resource"]["columns"]["insurer.claims"] = ["amount"]
    with_grant(base_input, columns=None)
    assert_denied(engine.decide(base_input), "invalid_input")


def test_null_columns_grant_every_column(engine: EmbeddedEngine, base_input: Doc) -> None:
    assert engine.decide(with_grant(base_input, columns=None)).allow


@pytest.mark.parametrize(
    ("valid_from", "valid_until", "allowed"),
    [
        ("2026-11-22T10:00:00Z", "2027-01-01T00:00:00Z", True),
        ("2026-11-22T10:00:01Z", "2027-01-01T00:00:00Z", False),
        ("2026-01-01T00:00:00Z", "2026-11-22T10:00:00Z", False),
        ("2026-01-01T00:00:00Z", "2026-11-22T10:00:00.001Z", True),
        ("2026-11-22T11:00:00+01:00", "2027-01-01T00:00:00Z", True),
        ("2026-01-01T00:00:00Z", "2026-11-22T11:00:00+01:00", False),
        ("2026-01-01T00:00:00Z", "2026-11-22T05:00:01-05:00", True),
    ],
)
def test_validity_window_compares_instants(
    engine: EmbeddedEngine, base_input: Doc, valid_from: str, valid_until: str, allowed: bool
) -> None:
    doc = with_grant(base_input, valid_from=valid_from, valid_until=valid_until)
    assert engine.decide(doc).allow is allowed


def test_expired_grant_explains_over_unrelated_grants(
    engine: EmbeddedEngine, base_input: Doc
) -> None:
    unrelated = {**base_input["grants"][0], "id": "g_o", "assets": ["insurer.claims"]}
    with_grant(base_input, valid_until="2026-06-01T00:00:00Z")
    base_input["grants"].append(unrelated)
    assert_denied(engine.decide(base_input), "grant_expired")

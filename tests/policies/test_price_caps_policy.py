"""Price caps in both engines: the embedded one and a real `opa run --server` refuse a charge
above the cap that applies to an asset, for the plan the decision charges under, and agree on
every case."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest

from policies import EmbeddedEngine, OpaEngine
from tests.policies.conftest import INPUT
from tests.support import start_opa

PRICING: dict[str, Any] = {
    "currency": "CNY",
    "per_query_minor": 100,
    "per_1k_rows_scanned_minor": 2,
    "per_cpu_second_minor": 10,
    "row_tiers": [{"above_rows": 1000, "per_1k_rows_scanned_minor": 5}],
    "plans": {"sensitive": {"per_query_minor": 300, "per_1k_rows_scanned_minor": 2,
                            "per_cpu_second_minor": 10, "row_tiers": []}},
    "free_purposes": ["public_welfare", "public_governance"],
}  # fmt: skip
# By name: the cap an asset is under (None: no cap applies, so none is sent).
CAPS: dict[str, dict | None] = {
    "none": None,
    "within": {"currency": "CNY", "max": {"per_query_minor": 300, "per_1k_rows_scanned_minor": 5}},
    "base": {"currency": "CNY", "max": {"per_query_minor": 99}},
    "tier": {"currency": "CNY", "max": {"per_1k_rows_scanned_minor": 4}},
    "plan": {"currency": "CNY", "max": {"per_query_minor": 200}},
    "cpu": {"currency": "CNY", "max": {"per_cpu_second_minor": 9}},
    "currency": {"currency": "USD", "max": {"per_query_minor": 10**6}},
    "malformed": {"currency": "CNY", "max": ["per_query_minor"]},
}


@pytest.fixture(scope="module")
def opa():
    server = start_opa(operator_dir=None)  # the shipped modules alone, as the embedded engine
    yield server
    server.stop()


def _document(cap: str, level: str, purpose: str, scope: str) -> dict[str, Any]:
    document = copy.deepcopy(INPUT)
    document["scope"] = scope
    document["request"] = {"method": "sql" if scope == "query:run" else "job",
                           "purpose": purpose, "grant_id": None}  # fmt: skip
    document["grants"][0].update(purpose=purpose, methods=["sql", "job"])
    asset = document["resource"]["assets"][0]
    asset["classification"] = level
    if CAPS[cap] is not None:
        asset.update(pricing=copy.deepcopy(PRICING), price_cap=copy.deepcopy(CAPS[cap]))
    return document


CASES = list(
    itertools.product(
        CAPS, ["L3", "L4"], ["commercial_pricing", "public_welfare"], ["query:run", "job:submit"]
    )
)


def test_engines_agree_on_every_capped_request(opa, engine: EmbeddedEngine) -> None:
    served = OpaEngine(opa.url)
    differing = [
        case for case in CASES if served.decide(_document(*case)) != engine.decide(_document(*case))
    ]
    assert differing == []


# (cap, level) → the reasons a commercial request is refused with; the others are allowed.
# L3 charges the base rates ("standard"), L4 the card's plan "sensitive", which has no tiers.
REFUSED = {
    ("base", "L3"): ("price_above_cap",),
    ("base", "L4"): ("price_above_cap",),
    ("tier", "L3"): ("price_above_cap",),
    ("plan", "L4"): ("price_above_cap",),
    ("cpu", "L3"): ("price_above_cap",),
    ("cpu", "L4"): ("price_above_cap",),
    ("currency", "L3"): ("price_cap_currency_mismatch",),
    ("currency", "L4"): ("price_cap_currency_mismatch",),
    ("malformed", "L3"): ("price_cap_invalid",),
    ("malformed", "L4"): ("price_cap_invalid",),
}


@pytest.mark.parametrize("engine_name", ["embedded", "opa"])
def test_a_charge_above_the_cap_is_refused_in_each_engine(
    opa, engine: EmbeddedEngine, engine_name: str
) -> None:
    decider = engine if engine_name == "embedded" else OpaEngine(opa.url)
    wrong = []
    for cap, level, purpose, scope in CASES:
        decision = decider.decide(_document(cap, level, purpose, scope))
        # Nothing is charged for a public-welfare grant (the plan "free"): nothing is capped.
        expected = REFUSED.get((cap, level), ()) if purpose == "commercial_pricing" else ()
        if decision.allow != (not expected) or decision.reasons != expected:
            wrong.append((cap, level, purpose, scope, decision.allow, decision.reasons))
    assert wrong == []


def test_a_purpose_the_card_serves_free_is_not_capped(opa, engine: EmbeddedEngine) -> None:
    document = _document("base", "L3", "commercial_pricing", "query:run")
    document["resource"]["assets"][0]["pricing"]["free_purposes"] = ["commercial_pricing"]
    for decider in (engine, OpaEngine(opa.url)):
        decision = decider.decide(document)
        assert decision.allow and decision.obligations.price_plan == "standard"

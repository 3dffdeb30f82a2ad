"""Price caps in the control store, on SQLite and PostgreSQL: the asset's own cap wins over its
classification's, a change takes effect only with its record, and a card's prices are read
against a cap field by field (base rates, row tiers, named plans, currency)."""

from __future__ import annotations

import pytest

from governance import NotFound
from governance.price_caps import (
    ABOVE_CAP,
    CURRENCY_MISMATCH,
    CapKind,
    PriceCap,
    PriceCapRecords,
)

PRICING = {
    "currency": "CNY",
    "per_query_minor": 100,
    "per_1k_rows_scanned_minor": 2,
    "per_cpu_second_minor": 0,
    "row_tiers": [{"above_rows": 1000, "per_1k_rows_scanned_minor": 1}],
    "plans": {"sensitive": {"per_query_minor": 300, "per_1k_rows_scanned_minor": 2,
                            "per_cpu_second_minor": 0, "row_tiers": []}},
    "free_purposes": ["public_welfare"],
}  # fmt: skip


def _cap(kind: CapKind, target: str, currency: str = "CNY", **maximum: int) -> PriceCap:
    return PriceCap(
        kind, target, currency, maximum, "guided price", "supervisor", "2026-12-01T00:00:00Z"
    )


def _recorded(into: list):
    return lambda cap: into.append(cap)


def test_the_asset_cap_overrides_its_classification_cap(store) -> None:
    caps = PriceCapRecords(store.engine)
    assert caps.in_force().applying("a.one", "L3") is None
    level = _cap(CapKind.CLASSIFICATION, "L3", per_query_minor=50)
    assert caps.set_cap(level, _recorded([])) is None
    assert caps.in_force().applying("a.one", "L3") == level
    assert caps.in_force().applying("a.one", "L2") is None
    own = _cap(CapKind.ASSET, "a.one", per_1k_rows_scanned_minor=9)
    caps.set_cap(own, _recorded([]))
    found = caps.in_force()
    assert found.applying("a.one", "L3") == own
    assert found.applying("a.two", "L3") == level


def test_setting_again_replaces_and_removing_lifts(store) -> None:
    caps = PriceCapRecords(store.engine)
    first = _cap(CapKind.ASSET, "a.one", per_query_minor=50)
    caps.set_cap(first, _recorded([]))
    replaced: list = []
    second = _cap(CapKind.ASSET, "a.one", "USD", per_cpu_second_minor=3)
    assert caps.set_cap(second, _recorded(replaced)) == first
    assert replaced == [first]
    assert caps.in_force().caps == (second,)
    removed: list = []
    assert caps.remove_cap(CapKind.ASSET, "a.one", _recorded(removed)) == second
    assert removed == [second] and caps.in_force().caps == ()
    with pytest.raises(NotFound):
        caps.remove_cap(CapKind.ASSET, "a.one", _recorded([]))


def test_a_change_whose_record_fails_is_undone(store) -> None:
    caps = PriceCapRecords(store.engine)
    kept = _cap(CapKind.CLASSIFICATION, "L4", per_query_minor=10)
    caps.set_cap(kept, _recorded([]))

    def failing(_: object) -> None:
        raise RuntimeError("the ledger is down")

    with pytest.raises(RuntimeError):
        caps.set_cap(_cap(CapKind.CLASSIFICATION, "L4", per_query_minor=99), failing)
    with pytest.raises(RuntimeError):
        caps.set_cap(_cap(CapKind.ASSET, "a.new", per_query_minor=1), failing)
    with pytest.raises(RuntimeError):
        caps.remove_cap(CapKind.CLASSIFICATION, "L4", failing)
    assert caps.in_force().caps == (kept,)


def test_a_card_within_its_cap_breaks_nothing() -> None:
    cap = _cap(CapKind.ASSET, "a.one", per_query_minor=300, per_1k_rows_scanned_minor=2)
    assert cap.breaches(PRICING) == []
    assert _cap(CapKind.ASSET, "a.one", per_cpu_second_minor=0).breaches(PRICING) == []


def test_every_rate_above_the_cap_is_named() -> None:
    cap = _cap(CapKind.ASSET, "a.one", per_query_minor=99, per_1k_rows_scanned_minor=1)
    assert cap.breaches(PRICING) == [
        (ABOVE_CAP, "pricing.per_query_minor"),
        (ABOVE_CAP, "pricing.per_1k_rows_scanned_minor"),
        (ABOVE_CAP, "pricing.plans.sensitive.per_query_minor"),
        (ABOVE_CAP, "pricing.plans.sensitive.per_1k_rows_scanned_minor"),
    ]


def test_a_cheap_base_rate_does_not_hide_an_expensive_plan_or_tier() -> None:
    plan_only = _cap(CapKind.ASSET, "a.one", per_query_minor=200)
    assert plan_only.breaches(PRICING) == [(ABOVE_CAP, "pricing.plans.sensitive.per_query_minor")]
    tiered = dict(PRICING, row_tiers=[{"above_rows": 10, "per_1k_rows_scanned_minor": 7}])
    rows = _cap(CapKind.ASSET, "a.one", per_1k_rows_scanned_minor=5)
    assert rows.breaches(tiered) == [(ABOVE_CAP, "pricing.row_tiers.0.per_1k_rows_scanned_minor")]


def test_another_currency_cannot_be_compared() -> None:
    cap = _cap(CapKind.CLASSIFICATION, "L3", "USD", per_query_minor=10**6)
    assert cap.breaches(PRICING) == [(CURRENCY_MISMATCH, "pricing.currency")]


def test_pricing_that_is_not_whole_numbers_counts_as_above() -> None:
    cap = _cap(CapKind.ASSET, "a.one", per_query_minor=10**6)
    assert cap.breaches(dict(PRICING, per_query_minor="1")) == [
        (ABOVE_CAP, "pricing.per_query_minor")
    ]
    assert cap.breaches(dict(PRICING, plans=["gold"])) == [(ABOVE_CAP, "pricing.plans")]

"""Pricing by plan, tiers and CPU, asset by asset, in integer minor units."""

import pytest

from ledger import AssetUse, LedgerError, price

CARD = {"per_query_minor": 100, "per_1k_rows_scanned_minor": 1, "currency": "CNY",
        "free_purposes": ["public_welfare", "public_governance"]}  # fmt: skip
SHARES = {"hospital": 10_000}


def use(rows: int, pricing: dict = CARD, asset: str = "a.b") -> AssetUse:
    return AssetUse(asset, rows, pricing, SHARES)


def amount(*uses: AssetUse, plan: str = "standard", purpose: str = "commercial", cpu_ms: int = 0):
    return price(uses, plan=plan, purpose=purpose, cpu_ms=cpu_ms).amount_minor


def test_per_query_plus_rows_rounded_up() -> None:
    assert [amount(use(rows)) for rows in (0, 1, 1000, 1001)] == [100, 101, 101, 102]


def test_each_asset_charges_its_own_rows() -> None:
    other = {**CARD, "per_query_minor": 50, "per_1k_rows_scanned_minor": 3, "free_purposes": []}
    charge = price(
        [use(2500), use(500, other, "c.d")], plan="standard", purpose="commercial", cpu_ms=0
    )
    assert [(p.asset, p.amount_minor) for p in charge.parts] == [("a.b", 103), ("c.d", 52)]
    assert charge.amount_minor == 155
    assert amount(use(2500), use(500, other, "c.d"), purpose="public_welfare") == 52


def test_free_plan_and_free_purposes_are_metered_at_zero() -> None:
    assert amount(use(10**6), plan="free") == 0
    assert amount(use(10**6), purpose="public_governance") == 0
    assert price([use(10)], plan="free", purpose="x", cpu_ms=5000).plan == "free"


def test_named_plan_takes_the_cards_rates_and_unknown_plans_the_base() -> None:
    card = {
        **CARD,
        "plans": {"sensitive": {"per_query_minor": 300, "per_1k_rows_scanned_minor": 3}},
    }
    assert amount(use(2000, card), plan="sensitive") == 306
    assert amount(use(2000, card), plan="standard") == 102
    assert amount(use(2000, card), plan="enterprise") == 102


def test_row_tiers_are_graduated() -> None:
    tiered = {**CARD, "per_query_minor": 0, "per_1k_rows_scanned_minor": 10,
              "row_tiers": [{"above_rows": 1000, "per_1k_rows_scanned_minor": 4},
                            {"above_rows": 3000, "per_1k_rows_scanned_minor": 1}]}  # fmt: skip
    assert amount(use(1000, tiered)) == 10
    assert amount(use(2000, tiered)) == 14
    assert amount(use(3000, tiered)) == 18
    assert amount(use(5000, tiered)) == 20
    assert amount(use(5001, tiered)) == 21  # one rounding up, at the end


def test_cpu_is_billed_in_whole_steps_and_split_by_rows() -> None:
    cpu = {**CARD, "per_query_minor": 0, "per_1k_rows_scanned_minor": 0, "per_cpu_second_minor": 50}
    assert amount(use(10, cpu), cpu_ms=0) == 0
    assert amount(use(10, cpu), cpu_ms=1) == 5  # 100 ms step
    assert amount(use(10, cpu), cpu_ms=1000) == 50
    charge = price(
        [use(3000, cpu), use(1000, cpu, "c.d")], plan="standard", purpose="x", cpu_ms=1000
    )
    assert [p.amount_minor for p in charge.parts] == [38, 13]  # 750 ms and 250 ms, rounded up


def test_missing_rates_are_zero() -> None:
    assert amount(use(5000, {"currency": "CNY"}), cpu_ms=9000) == 0


@pytest.mark.parametrize(
    ("uses", "cpu_ms"),
    [([use(1), use(1, {**CARD, "currency": "USD"})], 0), ([], 0), ([use(-1)], 0), ([use(1)], -1),
     ([use(1, {**CARD, "per_query_minor": 1.5})], 0), ([use(1, {**CARD, "currency": None})], 0),
     ([use(1, {**CARD, "free_purposes": "public_welfare"})], 0),
     ([use(1, {**CARD, "per_query_minor": True})], 0),
     ([use(1, {**CARD, "plans": []})], 0),
     ([use(1, {**CARD, "row_tiers": [{"above_rows": 0}]})], 0),
     ([use(1, {**CARD, "row_tiers": [{"above_rows": 5}, {"above_rows": 5}]})], 0)],
)  # fmt: skip
def test_invalid(uses: list[AssetUse], cpu_ms: int) -> None:
    with pytest.raises(LedgerError) as caught:
        price(uses, plan="standard", purpose="commercial", cpu_ms=cpu_ms)
    assert caught.value.code == "PRICING_INVALID"

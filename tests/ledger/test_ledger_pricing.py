import pytest

from ledger import Charge, LedgerError, price_query

CARD = {"per_query_minor": 100, "per_1k_rows_scanned_minor": 1, "currency": "CNY",
        "free_purposes": ["public_welfare", "public_governance"]}  # fmt: skip


def test_per_query_plus_rows_rounded_up() -> None:
    assert price_query([CARD], "commercial", 0) == Charge(100, "CNY")
    assert price_query([CARD], "commercial", 1) == Charge(101, "CNY")
    assert price_query([CARD], "commercial", 1000) == Charge(101, "CNY")
    assert price_query([CARD], "commercial", 1001) == Charge(102, "CNY")


def test_sums_assets_and_honours_each_assets_free_purposes() -> None:
    paid_only = {**CARD, "per_query_minor": 50, "per_1k_rows_scanned_minor": 3, "free_purposes": []}
    assert price_query([CARD, paid_only], "commercial", 2500) == Charge(103 + 59, "CNY")
    assert price_query([CARD, paid_only], "public_welfare", 2500) == Charge(59, "CNY")
    assert price_query([CARD], "public_governance", 10**6) == Charge(0, "CNY")


def test_missing_rates_are_zero() -> None:
    assert price_query([{"currency": "CNY"}], "x", 5000) == Charge(0, "CNY")


@pytest.mark.parametrize(
    ("pricings", "rows"),
    [([CARD, {**CARD, "currency": "USD"}], 1), ([], 1), ([CARD], -1),
     ([{**CARD, "per_query_minor": 1.5}], 1), ([{**CARD, "currency": None}], 1),
     ([{**CARD, "free_purposes": "public_welfare"}], 1)],
)  # fmt: skip
def test_invalid(pricings: list[dict], rows: int) -> None:
    with pytest.raises(LedgerError) as caught:
        price_query(pricings, "commercial", rows)
    assert caught.value.code == "PRICING_INVALID"

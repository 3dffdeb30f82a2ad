"""Revenue splits and double-entry postings: exact to the minor unit, whatever the amounts."""

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import AssetCharge, AssetUse, Charge, LedgerError, allocate, post, price

party = st.text(alphabet="abcdefgh-", min_size=1, max_size=8)
weights = st.dictionaries(party, st.integers(1, 10**6), min_size=1, max_size=8)


@st.composite
def shares_bp(draw) -> dict[str, int]:
    """A revenue-share table: positive basis points summing to 10,000."""
    names = draw(st.lists(party, min_size=1, max_size=6, unique=True))
    cuts = sorted(draw(st.lists(st.integers(1, 9_999), min_size=len(names) - 1,
                                max_size=len(names) - 1, unique=True)))  # fmt: skip
    bounds = [0, *cuts, 10_000]
    return {name: bounds[i + 1] - bounds[i] for i, name in enumerate(names)}


@settings(max_examples=3000, deadline=None)
@given(st.integers(0, 10**12), weights)
def test_parts_sum_to_the_amount_and_stay_within_one_unit(amount: int, table: dict) -> None:
    parts = allocate(amount, table)
    assert set(parts) == set(table)
    assert sum(parts.values()) == amount
    total = sum(table.values())
    for name, weight in table.items():
        assert abs(parts[name] * total - amount * weight) < total  # within one unit of exact


@settings(max_examples=500, deadline=None)
@given(st.integers(0, 10**9), weights)
def test_allocation_is_deterministic_whatever_the_order(amount: int, table: dict) -> None:
    assert allocate(amount, dict(reversed(table.items()))) == allocate(amount, table)


def test_remainder_goes_to_largest_remainders_then_by_name() -> None:
    assert allocate(100, {"a": 1, "b": 1, "c": 1}) == {"a": 34, "b": 33, "c": 33}
    assert allocate(10, {"x": 7000, "op": 2000, "pl": 1000}) == {"x": 7, "op": 2, "pl": 1}
    assert allocate(1, {"z": 6000, "a": 4000}) == {"z": 1, "a": 0}
    assert allocate(0, {"a": 3}) == {"a": 0}


@pytest.mark.parametrize(("amount", "table"), [(-1, {"a": 1}), (1, {}), (1, {"a": 0}),
                                               (1, {"a": True}), (1.0, {"a": 1})])  # fmt: skip
def test_allocation_refuses_bad_input(amount, table) -> None:
    with pytest.raises(LedgerError):
        allocate(amount, table)


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**9), shares_bp()), min_size=1, max_size=5))
def test_postings_balance_and_credit_every_share(parts: list) -> None:
    charge = Charge(
        sum(amount for amount, _ in parts),
        "CNY",
        "standard",
        tuple(AssetCharge(f"a.p{i}", amount, table) for i, (amount, table) in enumerate(parts)),
    )
    postings = post(charge, "analyst")
    assert sum(p.amount_minor for p in postings) == 0
    if charge.amount_minor:
        assert postings[0].account == "developer:analyst"
        assert postings[0].amount_minor == -charge.amount_minor
    expected: Counter[str] = Counter()
    for amount, table in parts:
        expected.update(allocate(amount, table))
    credited = {p.account.removeprefix("party:"): p.amount_minor for p in postings[1:]}
    assert credited == {name: n for name, n in expected.items() if n}


@settings(max_examples=1000, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 10**7), shares_bp(), st.integers(0, 1000)),
             min_size=1, max_size=4),
    st.integers(0, 10**6),
)  # fmt: skip
def test_priced_requests_post_exactly_their_charge(assets: list, cpu_ms: int) -> None:
    uses = [
        AssetUse(f"n.a{i}", rows, {"currency": "CNY", "per_query_minor": fee,
                                   "per_1k_rows_scanned_minor": 3, "per_cpu_second_minor": 7}, table)
        for i, (rows, table, fee) in enumerate(assets)
    ]  # fmt: skip
    charge = price(uses, plan="standard", purpose="commercial", cpu_ms=cpu_ms)
    assert charge.amount_minor == sum(part.amount_minor for part in charge.parts)
    postings = post(charge, "dev")
    assert sum(p.amount_minor for p in postings) == 0
    assert sum(p.amount_minor for p in postings if p.amount_minor > 0) == charge.amount_minor


def test_shares_that_do_not_sum_to_10000_are_refused() -> None:
    charge = Charge(10, "CNY", "standard", (AssetCharge("a.b", 10, {"x": 5000}),))
    with pytest.raises(LedgerError):
        post(charge, "dev")


def test_a_free_charge_posts_nothing() -> None:
    assert post(Charge(0, "CNY", "free", (AssetCharge("a.b", 0, {"x": 10_000}),)), "dev") == ()

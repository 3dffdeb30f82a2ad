"""Dominance in the enclave: sums and means that rest on one or two units are withheld."""

from __future__ import annotations

import pytest

from sandbox.disclosure import Dominance
from sandbox.enclave import Enclave, Thresholds
from sandbox.errors import QueryRejected
from sandbox.worker import WorkerConfig

SALES = {
    "id": "shop.sales",
    "title": "Sales",
    "provider": "shop",
    "classification": "L3",
    "domain": "retail",
    "rights": {"holder": "shop"},
    "columns": [
        {"name": "customer", "type": "VARCHAR", "role": "privacy_unit"},
        {"name": "region", "type": "VARCHAR", "role": "dimension"},
        {"name": "amount", "type": "DOUBLE", "role": "measure", "bounds": [-1000, 1000]},
    ],
    "revenue_shares_bp": {"shop": 10000},
}
LOYALTY = {
    **SALES,
    "id": "shop.loyalty",
    "title": "Loyalty",
    "columns": [
        {"name": "member", "type": "VARCHAR", "role": "privacy_unit"},
        {"name": "tier", "type": "VARCHAR", "role": "dimension"},
    ],
}
DOMINATED = {"whale", "pair", "negative"}
ACRO = Dominance()


def _sales() -> list[tuple[str, str, float]]:
    rows: list[tuple[str, str, float]] = []

    def group(region: str, amounts: list[float]) -> None:
        rows.extend((f"{region}-{i}", region, a) for i, a in enumerate(amounts))

    group("even", [100.0] * 20)
    group("pair", [1000.0, 1000.0] + [20.0] * 10)  # the two largest: 2000 of 2200
    group("close", [1000.0, 800.0] + [30.0] * 10)  # 1800 of 2100; the rest 300 of 1000
    group("negative", [-1000.0] + [10.0] * 11)  # judged on magnitudes: 1010 of 1110
    group("", [100.0] * 12)  # a NULL region, as even as "even"
    group("whale", [50.0] * 11)
    # One customer in many rows: no row stands out, the customer's own total does.
    rows.extend(("whale-big", "whale", 200.0) for _ in range(50))
    return rows


@pytest.fixture(scope="module")
def enclave(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("dominance")
    sales, loyalty = root / "sales.csv", root / "loyalty.csv"
    sales.write_text("customer,region,amount\n" + "".join(f"{c},{r},{a}\n" for c, r, a in _sales()))
    members = sorted({customer for customer, _, _ in _sales()})
    loyalty.write_text("member,tier\n" + "".join(f"{m},gold\n" for m in members))
    enclave = Enclave(root / "assets", root / "keyring", b"m" * 32, WorkerConfig(), workers=1)
    enclave.store.register(SALES, sales)
    enclave.store.register(LOYALTY, loyalty)
    yield enclave
    enclave.close()


def _run(enclave: Enclave, sql: str, dominance: Dominance | None = ACRO):
    outcome = enclave.run(enclave.analyse(sql), Thresholds(10, 1000, dominance))
    return outcome.released


def _by_region(released) -> dict:
    return {row[0]: row[1:] for row in released.rows}


BY_REGION = (
    "SELECT region, SUM(amount) AS total, COUNT(*) AS n, AVG(amount) AS mean "
    "FROM shop.sales GROUP BY region"
)


def test_dominated_sums_and_means_are_withheld_and_counts_kept(enclave) -> None:
    released = _run(enclave, BY_REGION)
    rows = _by_region(released)
    assert set(rows) == {"even", "pair", "close", "negative", None, "whale"}
    for region, (total, n, mean) in rows.items():
        assert n is not None
        if region in DOMINATED:
            assert (total, mean) == (None, None), region
        else:
            assert total is not None and mean is not None, region
    assert rows["even"] == [2000.0, 20, 100.0]
    assert rows[None] == [1200.0, 12, 100.0]  # the NULL group finds its own shares
    assert released.withheld_cells == 2 * len(DOMINATED)
    assert any("withheld" in note for note in released.notes)
    flagged = {
        row[0] for row, failed in zip(released.rows, released.dominated, strict=True) if failed
    }
    assert flagged == DOMINATED


def test_without_the_rules_nothing_is_withheld(enclave) -> None:
    released = _run(enclave, BY_REGION, dominance=None)
    assert all(None not in values for values in _by_region(released).values())
    assert released.withheld_cells == 0 and not any(released.dominated)


def test_p_percent_bites_when_the_policy_raises_p(enclave) -> None:
    # "close": the two largest are 1800 of 2100 (under k), the rest 300 against 1000.
    strict_p = Dominance(k=1.0, p=0.5)
    assert _by_region(_run(enclave, BY_REGION))["close"][0] == 2100.0
    assert _by_region(_run(enclave, BY_REGION, strict_p))["close"][0] is None
    assert _by_region(_run(enclave, BY_REGION, Dominance(k=1.0, p=0.2)))["close"][0] == 2100.0


def test_n_counts_the_largest_units(enclave) -> None:
    # With only the largest unit counted, "pair" (1000 of 2200) passes a k of 0.5.
    one = Dominance(n=1, k=0.5, p=0.0)
    rows = _by_region(_run(enclave, BY_REGION, one))
    assert rows["pair"][0] == 2200.0
    assert rows["whale"][0] is None  # 10000 of 10550


def test_a_whole_table_total_is_judged_on_its_own(enclave) -> None:
    released = _run(enclave, "SELECT SUM(amount) AS total FROM shop.sales")
    assert released.rows[0][0] is not None and released.dominated == [False]


def test_counts_alone_carry_no_dominance(enclave) -> None:
    released = _run(enclave, "SELECT region, COUNT(*) AS n FROM shop.sales GROUP BY region")
    assert len(released.rows) == 6 and not any(released.dominated)


@pytest.mark.parametrize(
    "sql",
    [
        # grouped by an expression, filtered, having
        "SELECT LOWER(region) AS r, SUM(amount) AS total FROM shop.sales "
        "WHERE region <> 'nowhere' GROUP BY LOWER(region) HAVING COUNT(*) > 0",
        # through a subquery
        "SELECT region, SUM(amount) AS total FROM "
        "(SELECT region, amount FROM shop.sales) AS s GROUP BY region",
        # joined to a second asset: each asset's units are judged
        "SELECT s.region, SUM(s.amount) AS total FROM shop.sales AS s "
        "JOIN shop.loyalty AS l ON s.customer = l.member GROUP BY s.region",
        # a set operation whose branches differ in what they sum
        "SELECT region, SUM(amount) AS total FROM shop.sales GROUP BY region "
        "UNION ALL SELECT 'all', COUNT(*) FROM shop.sales",
    ],
)
def test_every_query_shape_is_judged(enclave, sql: str) -> None:
    rows = _by_region(_run(enclave, sql))
    assert rows["whale"] == [None] and rows["even"] == [2000.0]


@pytest.mark.parametrize(
    ("sql", "rule"),
    [
        (BY_REGION + " HAVING SUM(amount) > 5000", "magnitude_in_having"),
        (BY_REGION + " HAVING AVG(amount) > 5", "magnitude_in_having"),
        (BY_REGION + " ORDER BY region", "order_with_dominance"),
        (BY_REGION + " ORDER BY total DESC", "order_with_dominance"),
        (BY_REGION + " LIMIT 3", "order_with_dominance"),
    ],
)
def test_a_withheld_sum_cannot_show_through_which_rows_exist_or_their_order(
    enclave, sql: str, rule: str
) -> None:
    """HAVING SUM(x) > t would bisect a withheld sum by whether its row appears; ORDER BY or
    LIMIT by where it stands. Refused on the text alone, so the refusal says nothing of data."""
    assert _run(enclave, sql, dominance=None).rows  # a plain query may do all of these
    with pytest.raises(QueryRejected) as refused:
        _run(enclave, sql)
    assert [v.rule for v in refused.value.violations] == [rule]


def test_counts_may_still_filter(enclave) -> None:
    rows = _by_region(_run(enclave, BY_REGION + " HAVING COUNT(*) > 15"))
    assert set(rows) == {"even", "whale"}


def test_rows_stand_in_an_order_set_by_released_values_only(enclave) -> None:
    # Both groups have 12 customers; the engine would put close (2100) before whale (10550).
    sql = (
        "SELECT COUNT(DISTINCT customer) AS customers, SUM(amount) AS total FROM shop.sales "
        "WHERE region IN ('whale', 'close') GROUP BY region"
    )
    assert _run(enclave, sql, dominance=None).rows == [[12, 2100.0], [12, 10550.0]]
    released = _run(enclave, sql)
    assert released.rows == [[12, None], [12, 2100.0]]
    assert released.dominated == [True, False]

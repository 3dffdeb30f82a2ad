"""The compiled SQL on its own: thresholds applied inside DuckDB, in every released branch."""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb
import pytest

from sandbox.cards import AssetCard, parse_card
from sandbox.demo import write_demo_assets
from sandbox.guard import analyse
from sandbox.store import catalog_name


@pytest.fixture(scope="module")
def cards():
    with tempfile.TemporaryDirectory() as folder:
        return {a.card["id"]: parse_card(a.card) for a in write_demo_assets(Path(folder))}


def stored(card: AssetCard, rows: list[tuple]) -> tuple[duckdb.DuckDBPyConnection, str]:
    """Real DuckDB holding `rows` as the card's asset under its catalog name, and that name."""
    catalog = catalog_name(card.id)
    db = duckdb.connect()
    db.execute(f"ATTACH ':memory:' AS {catalog}")
    db.execute(f"CREATE TABLE {catalog}.main.data "
               f"({', '.join(f'{c.name} {c.type}' for c in card.columns)})")  # fmt: skip
    marks = ", ".join("?" * len(card.columns))
    db.executemany(f"INSERT INTO {catalog}.main.data VALUES ({marks})", rows)
    return db, catalog


def _compile(sql: str, cards) -> str:
    analysis = analyse(sql, cards, {asset: catalog_name(asset) for asset in cards})
    return analysis.compiled.sql(min_units=17)


def test_threshold_is_a_having_clause_in_every_branch(cards) -> None:
    sql = _compile(
        "SELECT sex, COUNT(*) AS n FROM hospital.visits GROUP BY sex "
        "UNION ALL SELECT plan, COUNT(*) AS n FROM insurance.claims GROUP BY plan",
        cards,
    )
    assert sql.count(">= 17") == 2 and sql.count("HAVING") == 2


def test_compiled_sql_reads_only_clamped_scans(cards) -> None:
    sql = _compile("SELECT SUM(cost) AS s FROM hospital.visits WHERE age > 10.5", cards)
    assert f'"{catalog_name("hospital.visits")}"."main"."data"' in sql
    assert "TRY_CAST(20000 AS DECIMAL(10, 2))" in sql
    assert "TRY_CAST(10.5 AS DOUBLE)" in sql
    assert "CAST(" not in sql.replace("TRY_CAST(", "")


PRICES = {
    "id": "shop.prices",
    "title": "Prices",
    "provider": "shop",
    "classification": "L2",
    "domain": "retail",
    "rights": {"holder": "shop"},
    "columns": [
        {"name": "customer", "type": "VARCHAR", "role": "privacy_unit"},
        {"name": "price", "type": "DECIMAL(10,2)", "role": "dimension"},
        {"name": "items", "type": "BIGINT", "role": "dimension"},
        {"name": "big", "type": "DECIMAL(38,0)", "role": "dimension"},
        {"name": "wide", "type": "DECIMAL(18,2)", "role": "dimension"},
    ],
    "revenue_shares_bp": {"shop": 10000},
}


EXACT = {
    "big = 1e37": f"big = {10**37}",
    "items = 1.23456789012345678E+18": "items = 1234567890123456780",
}


@pytest.mark.parametrize(
    ("condition", "typed"),
    [
        ("price BETWEEN 0.05 AND 0.07", True),
        ("price IN (0.06, 1.5)", True),
        ("price >= -0.06", True),
        ("items < 3", True),
        # Exponents and long negatives keep their exact value (the red team's misses; DuckDB
        # compares such a literal as a DOUBLE, so the answer is checked against EXACT's).
        ("big = 1e37", True),
        ("items = 1.23456789012345678E+18", True),
        ("wide > -9999999999999999.99", True),
        ("wide < 9999999999999999.99", True),
        # Not a value of the column's type: both sides are compared as DOUBLE instead.
        ("price > 0.055", False),
        ("price < 1e30", False),
        ("items > 2.5", False),
    ],
)
def test_literals_take_the_columns_exact_type_where_they_hold_the_same_number(
    condition: str, typed: bool
) -> None:
    """The data is compared as stored (so DuckDB filters it without casting a value), and the
    answer is the exact comparison's, whichever way the literal is typed."""
    card = parse_card(PRICES)
    rows = [(f"c{i}", i / 100, i % 5, str(10**37 + i % 2), str(i - 100)) for i in range(200)]
    rows.append(("c_big", 0, 1234567890123456780, str(10**37), "-9999999999999999.99"))
    db, catalog = stored(card, rows)
    sql = f"SELECT COUNT(*) AS n FROM shop.prices WHERE {condition}"
    compiled = analyse(sql, {card.id: card}, {card.id: catalog}).compiled.sql(min_units=1)
    assert ('TRY_CAST("prices"' not in compiled) is typed
    exact = EXACT.get(condition, condition)
    (expected,) = db.execute(f"SELECT COUNT(*) FROM {catalog}.main.data WHERE {exact}").fetchone()
    assert db.execute(compiled).fetchall() == [(expected, expected)]  # the count, its units


VISITS = {
    **PRICES,
    "id": "shop.visits",
    "columns": [
        {"name": "customer", "type": "VARCHAR", "role": "privacy_unit"},
        {"name": "store", "type": "VARCHAR", "role": "dimension"},
    ],
}


def test_checked_rows_per_unit_decide_each_group_exactly_without_counting_every_unit() -> None:
    """Groups of 0 to 12 customers, each customer with 1 to 3 visits (some without a customer):
    with the checked bound of 3 rows per unit, exactly the groups of at least 5 customers pass,
    as with the full distinct count, and each released count is at least 5."""
    card = parse_card(VISITS)
    rows = [
        (None if (group + unit) % 7 == 0 else f"c{group}_{unit}", f"s{group}")
        for group in range(13)
        for unit in range(group)
        for _ in range(1 + (group * unit) % 3)
    ]
    db, catalog = stored(card, rows)
    sql = "SELECT store, COUNT(*) AS visits FROM shop.visits GROUP BY store"

    def released(rows_per_unit: dict[str, int | None]) -> list[tuple]:
        analysis = analyse(sql, {card.id: card}, {card.id: catalog}, rows_per_unit=rows_per_unit)
        compiled = analysis.compiled.sql(min_units=5)
        assert ("LIST_DISTINCT" in compiled) is bool(rows_per_unit)
        return db.execute(compiled).fetchall()

    exact, checked = released({}), released({card.id: 3})
    assert [row[:2] for row in checked] == [row[:2] for row in exact]
    assert all(row[2] >= 5 for row in checked)
    customers = {
        store: len({c for c, s in rows if s == store and c is not None}) for _, store in rows
    }
    assert sorted(row[0] for row in exact) == sorted(s for s, n in customers.items() if n >= 5)


def test_a_sum_too_wide_for_duckdbs_128_bits_is_no_data_dependent_error() -> None:
    """Five values near 10^38 overflow DuckDB's DECIMAL(38) sum, an error only such data
    raises (the red team's one-bit channel): a measure wider than 18 digits sums as DOUBLE."""
    wide = {**PRICES, "id": "shop.wide", "columns": [
        PRICES["columns"][0],
        {"name": "amount", "type": "DECIMAL(38,0)", "role": "measure", "bounds": [0, 9e37]},
    ]}  # fmt: skip
    card = parse_card(wide)
    db, catalog = stored(card, [(f"c{i}", str(9 * 10**37)) for i in range(5)])
    with pytest.raises(duckdb.Error):
        db.execute(f"SELECT SUM(amount) FROM {catalog}.main.data").fetchall()
    sql = "SELECT SUM(amount) AS s, AVG(amount) AS m FROM shop.wide"
    compiled = analyse(sql, {card.id: card}, {card.id: catalog}).compiled.sql(min_units=1)
    # Answered, not an error: sums beyond DECIMAL(38, 10)'s range come out null, as any
    # computed value past it does, whatever the rows.
    ((total, mean, units),) = db.execute(compiled).fetchall()
    assert (total, mean, units) == (None, None, 5)


ORDERS = {
    **PRICES,
    "id": "shop.orders",
    "columns": [
        {"name": "customer", "type": "VARCHAR", "role": "privacy_unit"},
        {"name": "buyer", "type": "VARCHAR", "role": "join_key"},
    ],
}
KEYED_VISITS = {
    **VISITS,
    "columns": [*VISITS["columns"], {"name": "ref", "type": "VARCHAR", "role": "join_key"}],
}


@pytest.mark.parametrize(
    ("join", "once"),
    [
        ("JOIN shop.orders o ON v.customer = o.customer", True),
        ("JOIN shop.orders o ON o.customer = v.customer AND v.ref = o.buyer", True),
        # Units not held equal on every row: each table's units are counted. Joined on the
        # buyer, store s8's 8 orders come from 2 visitors: it must not pass on its orders'.
        ("JOIN shop.orders o ON v.ref = o.buyer", False),
        ("LEFT JOIN shop.orders o ON v.customer = o.customer", False),
    ],
)
def test_a_join_on_privacy_units_counts_them_once(join: str, once: bool) -> None:
    """Where every row holds two tables' units equal, one distinct count stands for both; any
    other join counts each table's units. Either way exactly the groups whose every table has
    at least 5 distinct units among the joined rows are released."""
    visits, orders = parse_card(KEYED_VISITS), parse_card(ORDERS)
    db = duckdb.connect()
    catalogs = {card.id: catalog_name(card.id) for card in (visits, orders)}
    # Store s_n has n visitors; each visitor's order is bought by one of 2 people.
    for card, rows in (
        (visits, [(f"c{n}_{u}", f"s{n}", f"c{n}_{u}") for n in range(9) for u in range(n)]),
        (orders, [(f"c{n}_{u}", f"c{n}_{u % 2}") for n in range(9) for u in range(n)]),
    ):
        catalog = catalogs[card.id]
        db.execute(f"ATTACH ':memory:' AS {catalog}")
        db.execute(f"CREATE TABLE {catalog}.main.data "
                   f"({', '.join(f'{c.name} VARCHAR' for c in card.columns)})")  # fmt: skip
        marks = ", ".join("?" * len(card.columns))
        db.executemany(f"INSERT INTO {catalog}.main.data VALUES ({marks})", rows)
    sql = f"SELECT v.store, COUNT(*) AS n FROM shop.visits v {join} GROUP BY v.store"
    analysis = analyse(sql, {c.id: c for c in (visits, orders)}, catalogs)
    compiled = analysis.compiled.sql(min_units=5)
    having = compiled[compiled.index("HAVING") :]
    assert ('"v"."veil_u_source"' in having) and ('"o"."veil_u_source"' in having) is not once
    released = sorted(row[0] for row in db.execute(compiled).fetchall())
    tables = {t: f"(SELECT * FROM {catalogs[t]}.main.data)" for t in catalogs}
    full = db.execute(
        f"SELECT v.store FROM {tables['shop.visits']} v "
        f"{join.replace('shop.orders', tables['shop.orders'])} GROUP BY v.store "
        "HAVING COUNT(DISTINCT v.customer) >= 5 AND COUNT(DISTINCT o.customer) >= 5"
    ).fetchall()
    assert released == sorted(row[0] for row in full)
    if join.endswith("ON v.ref = o.buyer"):
        assert "s8" not in released  # its orders have 8 customers, its joined visits 2

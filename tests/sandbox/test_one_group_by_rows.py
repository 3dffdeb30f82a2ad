"""A query's one group decided from its rows first: more than k x R rows of an asset checked to
hold at most R rows per unit pass without their units read; every other group, and every
GROUP BY or join, is decided by counting units, so exactly the same groups are released."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.cards import parse_card
from sandbox.disclosure import Dominance
from sandbox.enclave import Enclave, Thresholds
from sandbox.guard import analyse
from sandbox.store import catalog_name
from sandbox.worker import WorkerConfig

ROWS_PER_UNIT = 3  # R, checked when the data is registered
MIN_UNITS = 4  # k: a group needs 4 customers; more than k x R = 12 rows guarantee them
VISITS = {
    "id": "shop.visits",
    "title": "Visits",
    "provider": "shop",
    "classification": "L2",
    "domain": "retail",
    "rights": {"holder": "shop", "personal_data": False},
    "privacy": {"max_rows_per_unit": ROWS_PER_UNIT},
    "columns": [
        {"name": "customer", "type": "VARCHAR", "role": "privacy_unit"},
        {"name": "store", "type": "VARCHAR", "role": "dimension"},
        {"name": "ref", "type": "VARCHAR", "role": "join_key"},
        {"name": "amount", "type": "DOUBLE", "role": "measure", "bounds": [0, 100]},
    ],
    "revenue_shares_bp": {"shop": 10000},
}
ORDERS = {
    **VISITS,
    "id": "shop.orders",
    "title": "Orders",
    "privacy": {},
    "columns": [
        {"name": "member", "type": "VARCHAR", "role": "privacy_unit"},
        {"name": "buyer", "type": "VARCHAR", "role": "join_key"},
    ],
}
# Each store's customers, one a row; None is a row without a customer. The whole asset may
# have at most R of those, as the registration checks: they count as one unit's rows.
STORES: dict[str, list[str | None]] = {
    "b": [f"b{u}" for u in range(3) for _ in range(ROWS_PER_UNIT)],
    "n": [f"n{u}" for u in range(3) for _ in range(ROWS_PER_UNIT)] + [None] * ROWS_PER_UNIT,
    "p": ["p0"],
    "m": [f"m{u}" for u in range(13)],
    "f": [f"f{u}" for u in range(MIN_UNITS)],
    "t": [f"t{u}" for u in range(3)],
}
# The one group each query's WHERE makes, and the stores whose rows it holds.
GROUPS = {
    # k - 1 customers with R rows each, the most a unit may have: (k - 1) x R rows.
    "below": ("b",),
    # The same and R rows without a customer: exactly k x R rows, still k - 1 customers.
    "nulls": ("n",),
    # One row more, one customer more: k x R + 1 rows, k customers.
    "above": ("n", "p"),
    # 13 customers of one row: more than k x R rows.
    "many": ("m",),
    # Exactly k customers in k rows: passes only by counting them.
    "few": ("f",),
    "three": ("t",),
}
ROWS = {group: sum(len(STORES[s]) for s in stores) for group, stores in GROUPS.items()}
CUSTOMERS = {
    group: len({c for s in stores for c in STORES[s] if c is not None})
    for group, stores in GROUPS.items()
}
PASS = {group for group, n in CUSTOMERS.items() if n >= MIN_UNITS}
# Each customer's visit refers to 5 orders, each by another member: joined, every group's
# rows are 5 times as many, and its customers as few.
ORDERS_PER_REF = 5


def _where(group: str, table: str = "") -> str:
    stores = ", ".join(f"'{s}'" for s in GROUPS[group])
    return f"{table}store IN ({stores})"


@pytest.fixture(scope="module")
def enclave(tmp_path_factory: pytest.TempPathFactory):
    root: Path = tmp_path_factory.mktemp("by-rows")
    visits, orders = root / "visits.csv", root / "orders.csv"
    lines = [
        f"{customer or ''},{store},{customer or 'none'},{10 + i}\n"
        for store, customers in STORES.items()
        for i, customer in enumerate(customers)
    ]
    visits.write_text("customer,store,ref,amount\n" + "".join(lines))
    refs = sorted({c or "none" for customers in STORES.values() for c in customers})
    orders.write_text(
        "member,buyer\n"
        + "".join(f"{ref}-o{i},{ref}\n" for ref in refs for i in range(ORDERS_PER_REF))
    )
    enclave = Enclave(root / "assets", root / "keyring", b"m" * 32, WorkerConfig(), workers=1)
    assert enclave.store.register(VISITS, visits).rows_per_unit == ROWS_PER_UNIT
    enclave.store.register(ORDERS, orders)
    yield enclave
    enclave.close()


def _run(enclave: Enclave, sql: str, dominance: Dominance | None = None):
    analysis = enclave.analyse(sql)
    return analysis, enclave.run(analysis, Thresholds(MIN_UNITS, 1000, dominance)).released


ONE_GROUP = {
    "where": "SELECT COUNT(*) AS n, SUM(amount) AS total FROM shop.visits WHERE {w}",
    "subquery": "SELECT COUNT(*) AS n FROM (SELECT amount FROM shop.visits WHERE {w}) v",
    "cte": "WITH v AS (SELECT store, amount FROM shop.visits) "
    "SELECT COUNT(*) AS n, AVG(amount) AS mean FROM v WHERE v.{w}",
    "having": "SELECT COUNT(*) AS n FROM shop.visits WHERE {w} HAVING COUNT(*) > 1",
}


def _one(shape: str, group: str) -> str:
    return ONE_GROUP[shape].format(w=_where(group))


@pytest.mark.parametrize("shape", ONE_GROUP)
@pytest.mark.parametrize("group", GROUPS)
def test_one_group_is_released_exactly_when_it_has_k_units(enclave, shape, group) -> None:
    """Groups of k - 1 units with R rows each, with R rows without a unit on top (k x R rows),
    stay suppressed; k units pass, whether they fill more than k x R rows or only k."""
    analysis, released = _run(enclave, _one(shape, group))
    assert analysis.compiled.rows_per_unit == ROWS_PER_UNIT
    assert bool(released.rows) is (group in PASS)
    if released.rows:
        assert released.rows[0][0] == ROWS[group]
        assert released.units[0] >= MIN_UNITS


@pytest.mark.parametrize(
    ("group", "units"),
    [
        # (n - 1) // R for the rows n: decided by rows, no unit counted.
        ("above", (ROWS["above"] - 1) // ROWS_PER_UNIT),
        ("many", (ROWS["many"] - 1) // ROWS_PER_UNIT),
        # At most k x R rows: counted, the units among its k x R smallest.
        ("few", MIN_UNITS),
    ],
)
def test_more_than_k_times_r_rows_pass_without_their_units_counted(enclave, group, units) -> None:
    _, released = _run(enclave, _one("where", group))
    assert released.units == [units]


def test_a_group_by_counts_units_in_one_pass_and_releases_the_same_groups(enclave) -> None:
    """Split by rows, a GROUP BY would release its large groups from the first pass and lose
    the small ones that pass only by counting (and a second pass for those would show, by its
    time, that a small group exists): it is decided in one pass, by counting."""
    groups = " ".join(
        f"WHEN {_where(group)} THEN '{group}'" for group in GROUPS if len(GROUPS[group]) == 1
    )
    sql = f"SELECT CASE {groups} END AS g, COUNT(*) AS n FROM shop.visits GROUP BY g"
    analysis, released = _run(enclave, sql)
    units = dict(zip((row[0] for row in released.rows), released.units, strict=True))
    # "many": the distinct units among its k x R = 12 smallest, at least k.
    assert units == {"many": 12, "few": 4}
    assert analysis.compiled.rows_per_unit is None


@pytest.mark.parametrize(
    "join",
    [
        "JOIN shop.orders o ON v.ref = o.buyer",
        "LEFT JOIN shop.orders o ON v.ref = o.buyer",
    ],
)
@pytest.mark.parametrize("group", GROUPS)
def test_joined_rows_never_stand_for_units(enclave, join, group) -> None:
    """Joined, one unit's R rows become R x 5: "below" and "nulls" have 45 and 60 rows from
    3 customers. The rows of a join say nothing of its units, so it is always counted."""
    sql = f"SELECT COUNT(*) AS n FROM shop.visits v {join} WHERE {_where(group, 'v.')}"
    analysis, released = _run(enclave, sql)
    assert bool(released.rows) is (group in PASS)
    if released.rows:
        assert released.rows[0][0] == ROWS[group] * ORDERS_PER_REF
    assert analysis.compiled.rows_per_unit is None


def test_branches_of_a_union_are_each_counted(enclave) -> None:
    sql = " UNION ALL ".join(
        f"SELECT '{g}' AS g, COUNT(*) AS n FROM shop.visits WHERE {_where(g)}" for g in GROUPS
    )
    analysis, released = _run(enclave, sql)
    assert {row[0] for row in released.rows} == PASS
    assert analysis.compiled.rows_per_unit is None


def test_under_the_dominance_rules_units_are_counted(enclave) -> None:
    """A job's answers carry their exact unit counts for its output checks."""
    _, released = _run(enclave, _one("where", "many"), Dominance())
    assert released.units == [CUSTOMERS["many"]]
    analysis = enclave.analyse(_one("where", "many"))
    with pytest.raises(ValueError):
        analysis.compiled.sql(MIN_UNITS, 2, by_rows=True)


def test_the_first_pass_reads_no_unit() -> None:
    """The SQL that decides by rows counts rows; the unit is not among what it computes."""
    card = parse_card(VISITS)
    catalog = catalog_name(card.id)
    analysis = analyse(
        _one("where", "many"),
        {card.id: card},
        {card.id: catalog},
        rows_per_unit={card.id: ROWS_PER_UNIT},
    )
    by_rows = analysis.compiled.sql(MIN_UNITS, by_rows=True)
    outer = by_rows[: by_rows.index("FROM (")] + by_rows[by_rows.index("HAVING") :]
    assert "veil_u" not in outer.replace('"veil_units"', "")
    assert f"(COUNT(*) - 1) // {ROWS_PER_UNIT} >= {MIN_UNITS}" in by_rows
    assert "LIST_DISTINCT" in analysis.compiled.sql(MIN_UNITS)
    unchecked = analyse(_one("where", "many"), {card.id: card}, {card.id: catalog})
    assert unchecked.compiled.rows_per_unit is None


def test_an_asset_too_small_for_the_bound_is_counted_at_once(tmp_path) -> None:
    """With no more than k x R rows in the whole asset (a public count), no group could pass
    by its rows: the first pass is not run, and the group is counted."""
    small = tmp_path / "small.csv"
    small.write_text("customer,store,ref,amount\n" + "".join(f"c{i},s,r,1\n" for i in range(12)))
    enclave = Enclave(tmp_path / "assets", tmp_path / "keyring", b"m" * 32, WorkerConfig())
    try:
        enclave.store.register(VISITS, small)
        _, released = _run(enclave, "SELECT COUNT(*) AS n FROM shop.visits")
        assert released.rows == [[12]] and released.units == [12]
    finally:
        enclave.close()

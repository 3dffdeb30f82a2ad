"""Differential privacy in the enclave, on real DuckDB: bounds, groups, shapes and accuracy."""

from __future__ import annotations

import math
import statistics

import duckdb
import pytest
from sqlglot import exp

from sandbox.cards import parse_card
from sandbox.errors import QueryRejected
from sandbox.guard import analyse
from sandbox.privacy.answer import Budget, _literal, answer, cost
from sandbox.privacy.plan import private_query
from sandbox.privacy.terms import Contribution
from sandbox.store import catalog_name
from sandbox.worker import plain
from tests.sandbox.test_compiled import stored

PEOPLE = {
    "id": "city.people",
    "title": "People",
    "provider": "city",
    "classification": "L3",
    "domain": "civil",
    "rights": {"holder": "city", "personal_data": True},
    "columns": [
        {"name": "person", "type": "VARCHAR", "role": "privacy_unit"},
        {"name": "name", "type": "VARCHAR", "role": "identifier"},
        {"name": "age", "type": "INTEGER", "role": "dimension"},
        {"name": "district", "type": "VARCHAR", "role": "dimension",
         "domain": ["north", "south", "east", "west", "nowhere"]},
        {"name": "zip", "type": "VARCHAR", "role": "filter_only"},
        {"name": "employer", "type": "VARCHAR", "role": "join_key"},
        {"name": "income", "type": "INTEGER", "role": "measure", "bounds": [0, 200000]},
    ],
    "revenue_shares_bp": {"city": 10000},
}  # fmt: skip
VISITS = {
    **PEOPLE,
    "id": "city.visits",
    "title": "Visits",
    "columns": [
        {"name": "person", "type": "VARCHAR", "role": "privacy_unit"},
        {"name": "ward", "type": "VARCHAR", "role": "dimension"},
        {"name": "employer", "type": "VARCHAR", "role": "join_key"},
        {"name": "cost", "type": "INTEGER", "role": "measure", "bounds": [0, 1000]},
    ],
}
ACCOUNTS = {
    **PEOPLE,
    "id": "city.accounts",
    "title": "Accounts",
    "columns": [
        {"name": "person", "type": "VARCHAR", "role": "privacy_unit"},
        {"name": "balance", "type": "DECIMAL(18,0)", "role": "dimension"},
    ],
}
EMPLOYERS = {
    **PEOPLE,
    "id": "city.employers",
    "title": "Employers (a reference table: no personal data)",
    "rights": {"holder": "city", "personal_data": False},
    "columns": [
        {"name": "firm", "type": "VARCHAR", "role": "privacy_unit"},
        {"name": "employer", "type": "VARCHAR", "role": "join_key"},
        {"name": "sector", "type": "VARCHAR", "role": "dimension"},
    ],
}
DISTRICTS = ["north", "south", "east", "west"]
PERSONS = 4000
# One person in a group of their own: age 103 and district "island" (outside the domain).
TARGET = {"person": "p_target", "age": 103, "district": "island", "income": 150_000}


@pytest.fixture(scope="module")
def enclave():
    """Real DuckDB holding both assets under their catalog names, and their cards."""
    cards = {card["id"]: parse_card(card) for card in (PEOPLE, VISITS, ACCOUNTS, EMPLOYERS)}
    db = duckdb.connect()
    people = [
        (f"p{i}", f"n{i}", 20 + i % 60, DISTRICTS[i % 4], f"z{i % 50}", f"e{i % 7}",
         10_000 + (i * 37) % 90_000)
        for i in range(PERSONS)
    ]  # fmt: skip
    people.append(("p_target", "x", 103, "island", "z_rare", "e0", 150_000))
    # Person p0 visits 400 times across 40 wards: contribution bounds must cut that down.
    visits = [(f"p{i}", f"w{i % 3}", f"e{i % 7}", 100) for i in range(PERSONS)]
    visits += [("p0", f"w{i % 40}", "e0", 1000) for i in range(400)]
    # Everyone's balance is 10^16 but the target's, 10^16 + 1: the same number as a float.
    accounts = [(f"p{i}", 10**16) for i in range(PERSONS)] + [("p_target", 10**16 + 1)]
    # Each employer listed twice (two offices): a join repeats each person's row.
    employers = [(f"f{i}{o}", f"e{i}", "public" if i < 3 else "private")
                 for i in range(7) for o in "ab"]  # fmt: skip
    tables = [(cards["city.people"], people, 7), (cards["city.visits"], visits, 4),
              (cards["city.accounts"], accounts, 2), (cards["city.employers"], employers, 3)]  # fmt: skip
    for card, rows, width in tables:
        catalog = catalog_name(card.id)
        db.execute(f"ATTACH ':memory:' AS {catalog}")
        columns = ", ".join(f"{c.name} {c.type}" for c in card.columns)
        db.execute(f"CREATE TABLE {catalog}.main.data ({columns})")
        db.executemany(f"INSERT INTO {catalog}.main.data VALUES ({', '.join('?' * width)})", rows)
    return cards, db


ONE_EACH = Contribution(1, 1)


def _plan(enclave, sql: str, contribution: Contribution = ONE_EACH):
    cards, _ = enclave
    analysis = analyse(sql, cards, {asset: catalog_name(asset) for asset in cards})
    return private_query(analysis, cards, contribution)


def _run(enclave):
    _, db = enclave

    def run(sql: str):
        cursor = db.execute(sql)
        # Values as the enclave's workers hand them over (DECIMAL as float, dates as text).
        rows = [[plain(v) for v in row] for row in cursor.fetchall()]
        return [c[0] for c in cursor.description], rows, False

    return run


def _ask(enclave, sql: str, epsilon: float = 1.0, contribution: Contribution = ONE_EACH):
    return answer(_plan(enclave, sql, contribution), Budget(epsilon, 1e-7), _run(enclave))


def test_a_units_rows_beyond_its_bounds_are_dropped_before_aggregating(enclave) -> None:
    plan = _plan(
        enclave,
        "SELECT ward, COUNT(*) AS n, SUM(cost) AS total FROM city.visits GROUP BY ward",
        Contribution(max_groups=2, max_rows=3),
    )
    columns, rows, _ = _run(enclave)(plan.branches[0].sql)
    n, total = columns.index("veil_x0"), columns.index("veil_x1")
    by_ward = {row[0]: row for row in rows}
    # p0's 400 visits in 40 wards add at most 2 groups x 3 rows; everyone else adds one row.
    extra = sum(by_ward[w][n] for w in by_ward) - PERSONS
    assert 0 < extra <= 2 * 3 - 1
    # and its total in each of those groups is clamped to the bound, 1000.
    assert sum(by_ward[w][total] for w in by_ward) <= PERSONS * 100 + 2 * 1000


def test_a_public_domain_answers_every_value_and_only_those(enclave) -> None:
    released = _ask(enclave, "SELECT district, COUNT(*) AS n FROM city.people GROUP BY district")
    keys = [row[0] for row in released.released.rows]
    # "nowhere" holds nobody and is answered; "island" holds the target and is not in it.
    assert sorted(keys) == sorted([*DISTRICTS, "nowhere"])
    assert released.delta == 0  # no partition selection, so no δ


def test_a_one_person_group_is_never_selected(enclave) -> None:
    for _ in range(30):
        released = _ask(enclave, "SELECT age, COUNT(*) AS n FROM city.people GROUP BY age")
        ages = [row[0] for row in released.released.rows]
        assert 103 not in ages
        assert len(ages) >= 55  # the 60 ages of about 67 people each are kept
        assert released.delta > 0


def test_selection_never_shows_a_filter_only_value_either(enclave) -> None:
    for _ in range(10):
        released = _ask(
            enclave, "SELECT age, SUM(income) FROM city.people WHERE zip = 'z_rare' GROUP BY age"
        )
        assert released.released.rows == []


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT COUNT(*) FROM city.people",
        "SELECT district, AVG(income) AS m, COUNT(*) * 2 AS twice FROM city.people "
        "GROUP BY district HAVING COUNT(*) > 10 ORDER BY m DESC LIMIT 3",
        "SELECT district, COUNT(*) FROM city.people GROUP BY district UNION ALL "
        "SELECT ward, COUNT(*) FROM city.visits GROUP BY ward",
        "SELECT p.district, SUM(v.cost) FROM city.people p JOIN city.visits v "
        "ON p.person = v.person GROUP BY p.district",
        "WITH old AS (SELECT person, income, district FROM city.people WHERE age > 60) "
        "SELECT district, COUNT(DISTINCT person), ROUND(AVG(income), 0) FROM old GROUP BY district",
        "SELECT COUNT(*) FROM (SELECT person, income FROM city.people WHERE age < 30) s",
        "SELECT UPPER(district) AS d, SUM(income) FROM city.people GROUP BY district",
    ],
)
def test_honest_shapes_answer(enclave, sql: str) -> None:
    released = _ask(enclave, sql).released
    assert released.rows and all(len(row) == len(released.columns) for row in released.rows)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT p.district, SUM(v.cost) FROM city.people p JOIN city.visits v "
        "ON p.employer = v.employer GROUP BY p.district",
        "SELECT COUNT(*) FROM (SELECT p.person, v.cost FROM city.people p "
        "JOIN city.visits v ON p.employer = v.employer) s",
    ],
)
def test_rows_of_two_units_are_refused(enclave, sql: str) -> None:
    with pytest.raises(QueryRejected) as refused:
        _plan(enclave, sql)
    assert [v.rule for v in refused.value.violations] == ["dp_join_not_on_privacy_unit"]


def test_the_spend_is_the_budget_by_openDPs_composition(enclave) -> None:
    plan = _plan(enclave, "SELECT age, COUNT(*), AVG(income) FROM city.people GROUP BY age")
    epsilon, delta = cost(plan, Budget(1.0, 1e-7))
    assert epsilon == pytest.approx(1.0) and epsilon <= 1.0 + 1e-9
    assert 0 < delta <= 1e-7


def test_the_95_percent_interval_covers_the_truth_95_percent_of_the_time(enclave) -> None:
    """Over many answers the stated half-width holds for about 95% of them."""
    truth_count = PERSONS + 1
    truth_sum = sum(10_000 + (i * 37) % 90_000 for i in range(PERSONS)) + 150_000
    sql = "SELECT COUNT(*) AS n, SUM(income) AS s FROM city.people"
    covered = {"n": 0, "s": 0}
    runs = 800
    for _ in range(runs):
        released = _ask(enclave, sql, epsilon=0.5)
        (n, s), columns = released.released.rows[0], released.privacy["columns"]
        covered["n"] += abs(n - truth_count) <= columns["n"]["half_width_95"]
        covered["s"] += abs(s - truth_sum) <= columns["s"]["half_width_95"]
    for name, hits in covered.items():
        assert 0.92 <= hits / runs <= 0.98, (name, hits / runs)


def test_the_complement_pair_gives_the_target_only_within_the_noise(enclave) -> None:
    """The total and the total without age 103: their difference was the target's income."""
    estimates = []
    for _ in range(40):
        total = _ask(enclave, "SELECT SUM(income) FROM city.people").released.rows[0][0]
        rest = _ask(enclave, "SELECT SUM(income) FROM city.people WHERE NOT (age = 103)")
        estimates.append(total - rest.released.rows[0][0])
    errors = [estimate - TARGET["income"] for estimate in estimates]
    # Each answer carries Laplace noise of scale 200000 (ε = 1): the difference's spread is
    # about 283000, far beyond the income it tries to reveal.
    assert statistics.pstdev(errors) > 100_000
    assert statistics.median(abs(e) for e in errors) > 20_000


def test_medians_and_quantiles_come_from_openDPs_exponential_mechanism(enclave) -> None:
    incomes = sorted(10_000 + (i * 37) % 90_000 for i in range(PERSONS))
    released = _ask(
        enclave,
        "SELECT MEDIAN(income) AS m, QUANTILE_CONT(income, 0.9) AS p90 FROM city.people",
    )
    (median, p90), columns = released.released.rows[0], released.privacy["columns"]
    assert columns["m"]["mechanism"] == "exponential" and columns["m"]["resolution"] == 1000
    # Within the grid's step and a few ranks of the truth (4,001 people, ε 0.5 each).
    assert abs(median - incomes[PERSONS // 2]) <= 2_000
    assert abs(p90 - incomes[int(PERSONS * 0.9)]) <= 2_000


def test_a_quantile_of_one_person_says_nothing_of_them(enclave) -> None:
    """The median of the target alone: the mechanism picks nearly at random over the grid."""
    picks = [
        _ask(
            enclave, f"SELECT MEDIAN(income) FROM city.people WHERE age = 103 AND age > -{i}"
        ).released.rows[0][0]
        for i in range(40)
    ]
    near = [p for p in picks if abs(p - TARGET["income"]) <= 1_000]
    assert len(near) < 10 and statistics.pstdev(picks) > 30_000


@pytest.mark.parametrize("fraction", ["1.5", "-0.1", "'0.5'"])
def test_a_quantile_fraction_outside_zero_to_one_is_refused(enclave, fraction: str) -> None:
    with pytest.raises(QueryRejected) as refused:
        _plan(enclave, f"SELECT QUANTILE_CONT(income, {fraction}) FROM city.people")
    assert "quantile_fraction" in [v.rule for v in refused.value.violations]


@pytest.mark.parametrize(
    "sql",
    [
        # A column picked from one row of a group (the red team's record of a 103-year-old).
        "SELECT CASE WHEN age = 103 THEN district END AS d, COUNT(*) FROM city.people "
        "GROUP BY age + LENGTH(district) > -1",
        "SELECT COUNT(*) FROM city.people HAVING CASE WHEN age = 103 THEN district END = 'island'",
        "SELECT district, COUNT(*) FROM city.people GROUP BY district "
        "ORDER BY CASE WHEN age = 103 THEN 1 END",
        "SELECT age, COUNT(*) FROM city.people GROUP BY FLOOR(age / 10)",
        "SELECT district || zip AS dz, COUNT(*) FROM city.people GROUP BY district",
    ],
)
def test_columns_outside_aggregates_are_only_released_keys(enclave, sql: str) -> None:
    with pytest.raises(QueryRejected) as refused:
        answer(_plan(enclave, sql), Budget(1.0, 1e-7), _run(enclave))
    assert {v.rule for v in refused.value.violations} & {
        "dp_ungrouped_column", "zip_in_select", "filter_only_in_select", "ungrouped_column",
    }  # fmt: skip


def test_expressions_of_whole_keys_are_released(enclave) -> None:
    released = _ask(
        enclave,
        "SELECT UPPER(district) AS d, LENGTH(district) + 1 AS n, COUNT(*) FROM city.people "
        "GROUP BY district",
    ).released
    assert sorted(row[0] for row in released.rows) == sorted(
        d.upper() for d in [*DISTRICTS, "nowhere"]
    )
    assert all(row[1] == len(row[0]) + 1 for row in released.rows)


def test_a_quantile_of_an_empty_group_is_answered_like_any_other(enclave) -> None:
    """Every district of the public domain answers, the target's alone being non-empty."""
    for _ in range(5):
        released = _ask(
            enclave,
            "SELECT district, MEDIAN(income) AS m FROM city.people WHERE age = 103 "
            "GROUP BY district",
        ).released
        assert len(released.rows) == len(DISTRICTS) + 1
        assert all(row[1] is not None for row in released.rows)


def test_groups_whose_keys_are_one_float_are_still_two_groups(enclave) -> None:
    """Selection keys each group by its exact text: the target's one-person group does not
    ride on the large group that has the same float value."""
    for _ in range(20):
        released = _ask(enclave, "SELECT balance, COUNT(*) FROM city.accounts GROUP BY balance")
        assert len(released.released.rows) == 1


def test_a_centred_sums_interval_holds_at_least_95_percent_of_the_time(enclave) -> None:
    """Where selection releases each group's unit count, a sum is its centred sum plus the
    midpoint times that count; the stated half-width covers both."""
    truth: dict[int, int] = {}
    for i in range(PERSONS):
        age = 20 + i % 60
        truth[age] = truth.get(age, 0) + 10_000 + (i * 37) % 90_000
    hits = total = 0
    for _ in range(60):
        released = _ask(enclave, "SELECT age, SUM(income) AS s FROM city.people GROUP BY age")
        width = released.privacy["columns"]["s"]["half_width_95"]
        assert released.privacy["columns"]["s"]["centred_on"] == 100_000
        for age, value in released.released.rows:
            hits += abs(value - truth[age]) <= width
            total += 1
    assert total > 60 * 50 and hits / total >= 0.95


def test_a_join_key_join_with_a_table_of_nobody_is_bounded_per_person(enclave) -> None:
    """A reference table without personal data joins on a join key: every joined row is one
    person's, and each person's rows are cut to the bounds after the join."""
    plan = _plan(
        enclave,
        "SELECT e.sector, COUNT(*) AS n FROM city.people p JOIN city.employers e "
        "ON p.employer = e.employer GROUP BY e.sector",
    )
    columns, rows, _ = _run(enclave)(plan.branches[0].sql)
    counts = {row[0]: row[columns.index("veil_x0")] for row in rows}
    # Two offices per employer doubled every row; one row per person survives the bound.
    assert sum(counts.values()) == PERSONS + 1
    released = answer(plan, Budget(1.0, 1e-7), _run(enclave)).released
    assert sorted(row[0] for row in released.rows) == ["private", "public"]


def _checked(enclave, sql: str, rows_per_unit: dict[str, int | None]):
    """The plan for an enclave whose assets were checked to hold at most these rows per unit."""
    cards, _ = enclave
    analysis = analyse(sql, cards, {asset: catalog_name(asset) for asset in cards})
    return private_query(analysis, cards, ONE_EACH, rows_per_unit)


def test_with_checked_rows_per_unit_every_row_counts_and_the_noise_covers_them(enclave) -> None:
    """p0's 401 visits are aggregated as they are, in one pass: nothing cuts them, so the
    count's sensitivity is every one of them, and the sum's every one at the bound."""
    sql = "SELECT ward, COUNT(*) AS n, SUM(cost) AS total FROM city.visits GROUP BY ward"
    plan = _checked(enclave, sql, {"city.visits": 401})
    (branch,) = plan.branches
    assert branch.contribution == Contribution(401, 1, 401)
    columns, rows, _ = _run(enclave)(branch.sql)
    assert sum(row[columns.index("veil_x0")] for row in rows) == PERSONS + 400
    assert sum(row[columns.index("veil_x1")] for row in rows) == PERSONS * 100 + 400 * 1000
    count, total = branch.components
    assert count.sensitivity(branch.contribution) == 401
    assert total.sensitivity(branch.contribution) == 401 * 1000


def test_the_noise_grows_with_the_checked_rows_per_unit(enclave) -> None:
    sql = "SELECT district, COUNT(*) AS n, AVG(income) AS m FROM city.people GROUP BY district"
    scales = {}
    for rows in (1, 4):
        answered = answer(_checked(enclave, sql, {"city.people": rows}), Budget(1.0, 1e-7),
                          _run(enclave))  # fmt: skip
        assert answered.privacy["contribution"]["max_rows_per_unit"] == rows
        scales[rows] = answered.privacy["columns"]["n"]["scale"]
    assert scales[4] == pytest.approx(4 * scales[1])


def test_one_pass_answers_are_the_truth_plus_noise(enclave) -> None:
    truth: dict[str, list[int]] = {}
    for i in range(PERSONS):
        truth.setdefault(DISTRICTS[i % 4], []).append(10_000 + (i * 37) % 90_000)
    sql = "SELECT district, COUNT(*) AS n, AVG(income) AS m FROM city.people GROUP BY district"
    plan = _checked(enclave, sql, {"city.people": 1})
    released = answer(plan, Budget(1000.0, 1e-7), _run(enclave)).released
    by_district = {row[0]: row for row in released.rows}
    assert by_district["nowhere"][1] <= 1  # the public domain's empty value answers too
    for district, incomes in truth.items():
        assert abs(by_district[district][1] - len(incomes)) <= 1
        assert by_district[district][2] == pytest.approx(statistics.fmean(incomes), rel=0.01)


def test_one_pass_never_selects_a_one_person_group(enclave) -> None:
    for _ in range(20):
        plan = _checked(
            enclave, "SELECT age, COUNT(*) AS n FROM city.people GROUP BY age", {"city.people": 1}
        )
        assert plan.branches[0].contribution.rows_per_unit == 1
        ages = [row[0] for row in answer(plan, Budget(1.0, 1e-7), _run(enclave)).released.rows]
        assert 103 not in ages and len(ages) >= 55


@pytest.mark.parametrize(
    ("sql", "one_pass"),
    [
        # A subquery that only filters still reads each row once.
        ("WITH old AS (SELECT person, income, district FROM city.people WHERE age > 60) "
         "SELECT district, SUM(income) FROM old GROUP BY district", True),
        # A join repeats a unit's rows beyond what was checked, on any key.
        ("SELECT p.district, SUM(v.cost) FROM city.people p JOIN city.visits v "
         "ON p.person = v.person GROUP BY p.district", False),
        ("SELECT e.sector, COUNT(*) FROM city.people p JOIN city.employers e "
         "ON p.employer = e.employer GROUP BY e.sector", False),
        # A quantile is chosen from each unit's bounded rows.
        ("SELECT MEDIAN(income) FROM city.people", False),
    ],
)  # fmt: skip
def test_one_pass_only_where_each_row_is_read_once(enclave, sql: str, one_pass: bool) -> None:
    checked = {"city.people": 1, "city.visits": 401, "city.employers": 2}
    plan = _checked(enclave, sql, checked)
    assert [b.contribution.rows_per_unit is not None for b in plan.branches] == [one_pass]
    assert answer(plan, Budget(1.0, 1e-7), _run(enclave)).released.rows


def test_one_pass_keeps_the_cards_bounds_where_storage_rounded_them() -> None:
    """An INTEGER measure whose card bounds are [0.49, 0.5] is stored as 0 or 1 (the bounds in
    its type); one pass clamps each row to the card's bounds again, so one person moves the sum
    by at most the 0.5 its noise is scaled to, not by 1 (the red team's exact AVG)."""
    card = parse_card({**PEOPLE, "id": "city.flags", "columns": [
        {"name": "person", "type": "VARCHAR", "role": "privacy_unit"},
        {"name": "flag", "type": "INTEGER", "role": "measure", "bounds": [0.49, 0.5]},
    ]})  # fmt: skip
    db, catalog = stored(card, [(f"p{i}", i % 2) for i in range(100)])
    analysis = analyse(
        "SELECT SUM(flag) AS s, AVG(flag) AS m FROM city.flags", {card.id: card}, {card.id: catalog}
    )
    plan = private_query(analysis, {card.id: card}, ONE_EACH, {card.id: 1})
    (branch,) = plan.branches
    assert branch.contribution.rows_per_unit == 1
    cursor = db.execute(branch.sql)
    row = dict(zip([c[0] for c in cursor.description], cursor.fetchone(), strict=True))
    assert row["veil_x0"] == pytest.approx(50 * 0.5 + 50 * 0.49)


@pytest.mark.parametrize("quantile", [False, True])
def test_each_groups_unit_count_is_its_distinct_units(enclave, quantile: bool) -> None:
    """Gathered one row per unit and group, a group's count of units is exactly its distinct
    units, p0 with 10 visits in each of its wards counted once in each (partition selection
    reads this count: one too many would let a group of one person through)."""
    median = ", MEDIAN(cost) AS m" if quantile else ""
    plan = _plan(
        enclave,
        f"SELECT ward, COUNT(*) AS n{median} FROM city.visits GROUP BY ward",
        Contribution(max_groups=50, max_rows=3),
    )
    columns, rows, _ = _run(enclave)(plan.branches[0].sql)
    units = {row[0]: row[columns.index("veil_units")] for row in rows}
    _, db = enclave
    truth = dict(
        db.execute(
            f"SELECT ward, COUNT(DISTINCT person) FROM {catalog_name('city.visits')}.main.data "
            "GROUP BY ward"
        ).fetchall()
    )
    assert units == truth


def _exact_components(card: dict, rows: list[tuple], sql: str, contribution, checked=None):
    """The branch's exact values before noise, per component, for `rows` of one asset."""
    parsed = parse_card(card)
    db, catalog = stored(parsed, rows)
    analysis = analyse(sql, {parsed.id: parsed}, {parsed.id: catalog})
    plan = private_query(analysis, {parsed.id: parsed}, contribution, checked)
    branch = plan.branches[0]
    cursor = db.execute(branch.sql)
    names = [c[0] for c in cursor.description]
    found = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    return branch, found


@pytest.mark.parametrize("max_rows", [1, 3])
def test_a_mean_bounded_per_person_is_the_mean_of_the_rows_it_may_contribute(max_rows) -> None:
    """Everyone visits once a week five times at cost 100: whatever number of rows a person may
    contribute, the exact mean before noise is 100 (the red team's case: summing every row
    while capping the count made it 500)."""
    rows = [(f"p{i}", "w0", "e0", 100) for i in range(200) for _ in range(5)]
    sql = "SELECT ward, AVG(cost) AS a FROM city.visits GROUP BY ward"
    branch, (row,) = _exact_components(VISITS, rows, sql, Contribution(1, max_rows))
    values = {
        (c.measure.value, c.centred, c.present_only): row[f"veil_x{i}"]
        for i, c in enumerate(branch.components)
    }
    counted = values[("rows", False, False)]
    assert counted == 200 * max_rows
    if ("sum", True, True) in values:  # centred on the bounds' midpoint per row
        mean = 500 + values[("sum", True, True)] / counted
    else:  # per unit, the midpoint added back once per unit
        mean = (values[("sum", True, False)] + 500 * values[("units", False, False)]) / counted
    assert mean == pytest.approx(100)


def test_one_pass_sums_a_missing_value_as_missing_where_it_clamps_each_row() -> None:
    """Bounds that are not values of the column's type are applied to each row again in one
    pass; a NULL must stay NULL there (DuckDB's GREATEST would make it the low bound)."""
    card = {**VISITS, "columns": [*VISITS["columns"][:3],
            {"name": "cost", "type": "INTEGER", "role": "measure", "bounds": [10.5, 20.5]}]}  # fmt: skip
    rows = [(f"p{i}", "w0", "e0", None if i % 2 else 15) for i in range(100)]
    sql = "SELECT ward, SUM(cost) AS s, AVG(cost) AS a FROM city.visits GROUP BY ward"
    branch, (row,) = _exact_components(card, rows, sql, ONE_EACH, {"city.visits": 1})
    sums = [row[f"veil_x{i}"] for i, c in enumerate(branch.components) if not c.centred
            and c.measure.value == "sum"]  # fmt: skip
    assert sums == [50 * 15]
    counts = [row[f"veil_x{i}"] for i, c in enumerate(branch.components) if c.measure.value == "rows"
              and c.column]  # fmt: skip
    assert counts == [50]


def test_noisy_values_reach_the_finishing_query_as_the_doubles_they_are() -> None:
    """Each noisy value is written into the finishing query as a DOUBLE literal DuckDB reads
    back bit for bit, negatives and extremes included (not a DECIMAL, which would change the
    arithmetic the finish does with it)."""
    values = [1189830.7207476022, -11238269.00067202, 5e-324, -1.7976931348623157e308, 0.1,
              -0.0, 123.0, -1e22, 2.5e-7, float("inf")]  # fmt: skip
    sql = exp.select(*(_literal(v) for v in values)).sql(dialect="duckdb")
    typed = ", ".join(f"typeof(c{i})" for i in range(len(values)))
    names = ", ".join(f"c{i}" for i in range(len(values)))
    db = duckdb.connect()
    back = db.execute(sql).fetchone()
    assert all(
        a == b and math.copysign(1, a) == math.copysign(1, b)
        for a, b in zip(back, values, strict=True)
    )
    assert set(db.execute(f"SELECT {typed} FROM ({sql}) t({names})").fetchone()) == {"DOUBLE"}

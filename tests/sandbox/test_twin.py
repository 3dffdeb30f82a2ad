"""Synthetic twins over a real DuckDB: true to the card, inside its public domains and bounds,
never a real identifier; under ε they follow the data, and a planted rare person is noise."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from sandbox.cards import AssetCard, parse_card
from sandbox.errors import CardInvalid, JobRejected
from sandbox.jobs.child import QueryFailed
from sandbox.jobs.local import run_locally
from sandbox.twin import Marginals, categories, measure, synthesise, write

CATALOG = "asset_people"
DISTRICTS = ["north", "south", "east", "west", "isle"]
PERSONS = 5000
CARD = {
    "id": "city.people",
    "title": "People",
    "provider": "city-hospital",
    "classification": "L3",
    "domain": "civil",
    "rights": {"holder": "city-hospital", "personal_data": True},
    "columns": [
        {"name": "person", "type": "VARCHAR", "role": "privacy_unit"},
        {"name": "name", "type": "VARCHAR", "role": "identifier"},
        {"name": "household", "type": "VARCHAR", "role": "join_key"},
        {"name": "district", "type": "VARCHAR", "role": "dimension", "domain": DISTRICTS},
        {"name": "age", "type": "INTEGER", "role": "dimension"},
        {"name": "smoker", "type": "BOOLEAN", "role": "dimension"},
        {"name": "postcode", "type": "VARCHAR", "role": "filter_only"},
        {"name": "visit_day", "type": "DATE", "role": "dimension"},
        {"name": "income", "type": "INTEGER", "role": "measure", "bounds": [0, 200000]},
        {"name": "cost", "type": "DECIMAL(8,2)", "role": "measure", "bounds": [0, 1000]},
    ],
    "twin": {"epsilon": 2.0},
    "revenue_shares_bp": {"city-hospital": 10000},
}  # fmt: skip
# 60% north, 25% south, 10% east, 5% west; one person alone in "isle", with an outlying income.
PEOPLE = f"""
SELECT 'p' || i AS person, 'name' || i AS name, 'h' || (i // 3) AS household,
       CASE WHEN i % 20 < 12 THEN 'north' WHEN i % 20 < 17 THEN 'south'
            WHEN i % 20 < 19 THEN 'east' ELSE 'west' END AS district,
       20 + i % 60 AS age, i % 3 = 0 AS smoker, lpad(((i * 7919) % 1000000)::VARCHAR, 6, '0')
       AS postcode, DATE '2024-01-01' + (i % 365)::INTEGER AS visit_day,
       10000 + (i * 37) % 50000 AS income, ((i * 13) % 100000) / 100.0 AS cost
FROM range({PERSONS}) AS t(i)
"""
RARE = """
SELECT 'p_rare', 'Rare Person', 'h_rare', 'isle', 104, false, '999999', DATE '2024-06-01',
       190000, 999.99
"""


def _database(with_rare: bool) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute(f"ATTACH ':memory:' AS {CATALOG}")
    source = PEOPLE + (f" UNION ALL {RARE}" if with_rare else "")
    connection.execute(
        f"CREATE TABLE {CATALOG}.main.data AS SELECT person, name, household, district, "
        f"age::INTEGER AS age, smoker, postcode, visit_day, income::INTEGER AS income, "
        f"cost::DECIMAL(8,2) AS cost FROM ({source})"
    )
    return connection


@pytest.fixture(scope="module")
def people() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = _database(with_rare=True)
    yield connection
    connection.close()


def _runner(connection: duckdb.DuckDBPyConnection):
    return lambda sql: [list(row) for row in connection.execute(sql).fetchall()]


CARD_OBJECT: AssetCard = parse_card(CARD)


def test_a_public_twin_is_true_to_its_card_in_csv_and_parquet(tmp_path: Path) -> None:
    rows = synthesise(CARD_OBJECT, None, 400, seed=7)
    write(CARD_OBJECT, rows, tmp_path / "twin.csv", "csv")
    write(CARD_OBJECT, rows, tmp_path / "twin.parquet", "parquet")
    with (tmp_path / "twin.csv").open() as handle:
        read = list(csv.DictReader(handle))
    assert len(read) == 400 and list(read[0]) == [c["name"] for c in CARD["columns"]]
    connection = duckdb.connect()
    described = connection.execute(
        f"DESCRIBE SELECT * FROM read_parquet('{tmp_path / 'twin.parquet'}')"
    ).fetchall()
    assert [(name, kind) for name, kind, *_ in described] == [
        (column.name, column.type) for column in CARD_OBJECT.columns
    ]
    metadata = connection.execute(
        f"SELECT key, value FROM parquet_kv_metadata('{tmp_path / 'twin.parquet'}')"
    ).fetchall()
    assert (b"veil_synthetic", b"true") in metadata
    # Without marginals every public category is drawn alike, and values stay inside.
    districts = Counter(row["district"] for row in read)
    assert set(districts) == set(DISTRICTS) and min(districts.values()) > 40
    assert all(0 <= int(row["income"]) <= 200000 for row in read)
    assert all(0 <= float(row["cost"]) <= 1000 and len(row["cost"].split(".")[-1]) <= 2
               for row in read)  # fmt: skip
    assert {row["smoker"] for row in read} == {"true", "false"}
    for column in ("person", "name", "household", "postcode"):
        assert all(row[column].startswith("synthetic-") for row in read)
    # The same seed, the same twin: a download can be repeated.
    assert synthesise(CARD_OBJECT, None, 400, seed=7) == rows


def test_no_real_identifier_or_key_ever_appears(people: duckdb.DuckDBPyConnection) -> None:
    marginals = measure(CARD_OBJECT, CATALOG, 2.0, _runner(people))
    twin = synthesise(CARD_OBJECT, marginals, 2000, seed=1)
    names = [column.name for column in CARD_OBJECT.columns]
    for column in ("person", "name", "household", "postcode", "age", "visit_day"):
        read = people.execute(f"SELECT {column} FROM {CATALOG}.main.data").fetchall()
        real = {row[0] for row in read}
        synthetic = {row[names.index(column)] for row in twin}
        if column in ("age", "visit_day"):  # no public domain: a few placeholders, not data
            assert len(synthetic) <= 10
        else:
            assert not real & synthetic, column


def test_under_epsilon_the_marginals_follow_the_data(people: duckdb.DuckDBPyConnection) -> None:
    marginals = measure(CARD_OBJECT, CATALOG, 2.0, _runner(people))
    # Four columns measured (district, smoker, income, cost), composed by OpenDP to ε.
    assert sorted(marginals.weights) == ["cost", "district", "income", "smoker"]
    assert marginals.epsilon == pytest.approx(2.0)
    twin = synthesise(CARD_OBJECT, marginals, PERSONS, seed=3)
    share = Counter(row[3] for row in twin)
    for district, expected in (("north", 0.60), ("south", 0.25), ("east", 0.10)):
        assert share[district] / PERSONS == pytest.approx(expected, abs=0.03)
    # The data has no NULL income; its NULL count's noise may still bring a handful.
    incomes = [row[8] for row in twin if row[8] is not None]
    assert len(incomes) > 0.99 * PERSONS
    inside = sum(10000 <= income < 60000 for income in incomes) / len(incomes)
    assert inside > 0.95  # the data's range, not the bounds' (uniform there would be 25%)


def test_a_planted_rare_person_is_noise_not_a_value() -> None:
    """With ε = 1 over two columns the lone "isle" person's count carries Laplace noise of
    scale 2: over many measurements, with the person the released count is sometimes zero or
    less, and without them sometimes above zero; the twin cannot tell the two apart."""
    card = parse_card(
        dict(CARD, columns=[c for c in CARD["columns"] if c["name"] in
                            ("person", "district", "income")])
    )  # fmt: skip
    isle, top = categories(card.column("district")).index("isle"), 19
    released: dict[bool, list[tuple[float, float]]] = {}
    for with_rare in (True, False):
        connection = _database(with_rare)
        run = _runner(connection)
        found = [measure(card, CATALOG, 1.0, run) for _ in range(40)]
        released[with_rare] = [(m.weights["district"][isle], m.weights["income"][top])
                               for m in found]  # fmt: skip
        connection.close()
    for position in (0, 1):  # the rare district, and the outlier's income bin
        present = [pair[position] for pair in released[True]]
        absent = [pair[position] for pair in released[False]]
        assert min(present) == 0 and max(absent) > 0
        assert len(set(present)) > 2


def test_marginals_round_trip_and_an_empty_histogram_falls_back_to_uniform() -> None:
    marginals = Marginals({"district": [0.0] * 6}, 0.5, 1)
    assert Marginals.from_json(marginals.to_json()) == marginals
    rows = synthesise(CARD_OBJECT, marginals, 300, seed=2)
    assert set(row[3] for row in rows) == set(DISTRICTS)


@pytest.mark.parametrize("epsilon", [0, -1, 10.5, "lots"])
def test_the_twin_epsilon_is_positive_and_capped(epsilon: object) -> None:
    with pytest.raises(CardInvalid):
        parse_card(dict(CARD, twin={"epsilon": epsilon}))
    assert parse_card(dict(CARD, twin=None)).twin is None


BY_DISTRICT = """
answer = sql("SELECT district, COUNT(*) AS n, AVG(income) AS mean FROM city.people "
             "GROUP BY district")
publish("by_district", [["district", "label"], ["n", "count"], ["mean", "mean"]],
        answer["rows"])
"""


def test_a_job_runs_locally_against_the_twin(tmp_path: Path) -> None:
    twin = tmp_path / "people.parquet"
    write(CARD_OBJECT, synthesise(CARD_OBJECT, None, 3000, seed=5), twin, "parquet")
    run = run_locally(BY_DISTRICT, {"city.people": twin}, {"city.people": CARD_OBJECT})
    table = run.outputs["by_district"]
    assert run.queries == 1
    assert table["columns"] == ["district", "n", "mean"]
    # Every district of the public domain, released under DP as on the server.
    assert sorted(row[0] for row in table["rows"]) == sorted(DISTRICTS)
    assert all(row[1] % 5 == 0 for row in table["rows"])  # the gate's rounding


def test_a_local_job_meets_the_same_compiler_and_guard(tmp_path: Path) -> None:
    twin = tmp_path / "people.csv"
    write(CARD_OBJECT, synthesise(CARD_OBJECT, None, 50, seed=5), twin, "csv")
    tables, cards = {"city.people": twin}, {"city.people": CARD_OBJECT}
    with pytest.raises(JobRejected):
        run_locally("kind = ().__class__", tables, cards)
    with pytest.raises(JobRejected):  # refused by name and line before it runs
        run_locally("import os\nos.listdir('/')", tables, cards)
    with pytest.raises(QueryFailed) as refused:
        run_locally('sql("SELECT name FROM city.people")', tables, cards)
    assert refused.value.args == ("QUERY_REJECTED",)
    files = "sql(\"SELECT COUNT(*) FROM read_csv('/etc/passwd')\")"
    with pytest.raises(QueryFailed):
        run_locally(files, tables, cards)

"""Text dimensions with a public domain are stored with their codes, and a private one-pass
group-by over them groups by the codes: exactly the aggregates grouping by the text gives,
while no query can name a code or see one."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.enclave import Enclave, Thresholds
from sandbox.errors import QueryRejected
from sandbox.guard import analyse
from sandbox.privacy.terms import Contribution
from sandbox.store import catalog_name
from sandbox.worker import WorkerConfig

WARDS = ["a", "b", "o'x", "é", ""]
VISITS = {
    "id": "clinic.visits",
    "title": "Visits",
    "provider": "clinic",
    "classification": "L3",
    "domain": "health",
    "rights": {"holder": "clinic"},
    "privacy": {"max_rows_per_unit": 3, "max_groups_per_unit": 1, "max_rows_per_group": 3},
    "columns": [
        {"name": "patient", "type": "VARCHAR", "role": "privacy_unit"},
        {"name": "ward", "type": "VARCHAR", "role": "dimension", "domain": WARDS},
        {"name": "sex", "type": "VARCHAR", "role": "dimension", "domain": ["F", "M"]},
        {"name": "year", "type": "INTEGER", "role": "dimension", "domain": [2023, 2024]},
        {"name": "note", "type": "VARCHAR", "role": "dimension"},
        {"name": "cost", "type": "DOUBLE", "role": "measure", "bounds": [0, 100]},
    ],
    "revenue_shares_bp": {"clinic": 10000},
}
# Wards outside the domain ("A" differs from "a" by case alone, "zz" is unknown) and missing
# ones (an empty CSV field) are stored without a code: no public group holds them.
STORED_WARDS = ["a", "b", "o'x", "é", "A", "zz", None, "a", "b", "a"]
CODED = {
    "SELECT ward, COUNT(*) AS n, SUM(cost) AS total FROM clinic.visits GROUP BY ward",
    "SELECT ward, sex, COUNT(*) AS n, AVG(cost) AS mean FROM clinic.visits GROUP BY ward, sex",
    "SELECT sex, ward, COUNT(*) AS n FROM clinic.visits WHERE ward <> 'b' AND note <> 'x1' "
    "GROUP BY sex, ward",
    "SELECT ward || '!' AS w, COUNT(*) AS n FROM clinic.visits GROUP BY ward",
    "SELECT v.ward, COUNT(*) AS n FROM clinic.visits AS v WHERE v.note LIKE 'x%' GROUP BY v.ward",
}
UNCODED = {
    # A key without a code (an integer's domain), or not read straight from the scan.
    "SELECT ward, year, COUNT(*) AS n FROM clinic.visits GROUP BY ward, year",
    "SELECT ward, COUNT(*) AS n FROM (SELECT ward FROM clinic.visits WHERE note = 'x2') AS w "
    "GROUP BY ward",
    "WITH w AS (SELECT ward, cost FROM clinic.visits) SELECT ward, SUM(cost) AS t FROM w "
    "GROUP BY ward",
}


@pytest.fixture(scope="module")
def enclave(tmp_path_factory: pytest.TempPathFactory):
    root: Path = tmp_path_factory.mktemp("codes")
    source = root / "visits.csv"
    lines = []
    for i in range(300):
        ward = STORED_WARDS[i % len(STORED_WARDS)]
        field = "" if ward is None else f'"{ward}"'
        lines.append(f"p{i // 3},{field},{'FM'[i % 2]},{2023 + i % 3},x{i % 4},{i % 120}\n")
    source.write_text("patient,ward,sex,year,note,cost\n" + "".join(lines))
    enclave = Enclave(root / "assets", root / "keyring", b"m" * 32, WorkerConfig(), workers=1)
    assert enclave.store.register(VISITS, source).coded
    yield enclave
    enclave.close()


def _branches(enclave: Enclave, sql: str, coded: bool) -> list[tuple[str, list[list]]]:
    """Each branch's SQL and exact aggregates, planned as for an asset stored with codes or
    as for one stored before codes were."""
    stored = enclave.store.list()
    analysis = analyse(
        sql,
        {s.card.id: s.card for s in stored},
        {s.card.id: catalog_name(s.card.id) for s in stored},
        frozenset(),
        frozenset(s.card.id for s in stored if s.bounded),
        {s.card.id: s.rows_per_unit for s in stored},
        frozenset(s.card.id for s in stored if s.coded) if coded else frozenset(),
    )
    private = enclave.private(analysis, Contribution(1, 3))
    return [(b.sql, enclave.pool.run(b.sql).rows) for b in private.branches]


def test_each_text_dimension_with_a_domain_is_stored_with_its_position_in_it(enclave) -> None:
    table = f'"{catalog_name("clinic.visits")}".main.data'
    rows = enclave.pool.run(
        f"SELECT DISTINCT ward, veil_code_ward, sex, veil_code_sex FROM {table}"
    ).rows
    for ward, ward_code, sex, sex_code in rows:
        assert ward_code == (WARDS.index(ward) if ward in WARDS else None)
        assert sex_code == ["F", "M"].index(sex)
    assert {row[0] for row in rows} == {w if w is not None else None for w in STORED_WARDS}
    columns = enclave.pool.run(f"SELECT * FROM {table} LIMIT 1").columns
    assert [c for c in columns if c.startswith("veil_")] == ["veil_code_ward", "veil_code_sex"]


@pytest.mark.parametrize("sql", sorted(CODED))
def test_grouped_by_codes_the_aggregates_are_exactly_those_of_the_text(enclave, sql) -> None:
    ((coded_sql, coded_rows),) = _branches(enclave, sql, coded=True)
    ((text_sql, text_rows),) = _branches(enclave, sql, coded=False)
    assert "veil_code_" in coded_sql and "veil_code_" not in text_sql
    assert coded_rows == text_rows
    # Every group of the public domain, each once, whatever the data holds.
    assert len(coded_rows) == len({tuple(row[:2]) for row in coded_rows})


@pytest.mark.parametrize("sql", sorted(UNCODED))
def test_keys_without_codes_are_grouped_by_their_values(enclave, sql) -> None:
    ((coded_sql, coded_rows),) = _branches(enclave, sql, coded=True)
    ((_, text_rows),) = _branches(enclave, sql, coded=False)
    assert "veil_code_" not in coded_sql.split("FROM", 1)[0]
    assert "veil_o0" not in coded_sql
    assert coded_rows == text_rows


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT veil_code_ward, COUNT(*) FROM clinic.visits GROUP BY veil_code_ward",
        "SELECT ward, COUNT(*) FROM clinic.visits WHERE veil_code_ward = 0 GROUP BY ward",
        'SELECT ward, COUNT(*) FROM clinic.visits WHERE "VEIL_CODE_WARD" = 0 GROUP BY ward',
        "SELECT v.veil_code_sex AS s, COUNT(*) FROM clinic.visits v GROUP BY 1",
    ],
)
def test_no_query_can_name_a_code(enclave, sql) -> None:
    with pytest.raises(QueryRejected):
        enclave.analyse(sql)


def test_a_star_never_reaches_a_code(enclave) -> None:
    sql = (
        "SELECT ward, sex, COUNT(*) AS n FROM (SELECT * EXCLUDE (patient) FROM clinic.visits) v "
        "GROUP BY ward, sex"
    )
    try:
        analysis = enclave.analyse(sql)
    except QueryRejected:
        return  # refused outright: nothing reaches a code either
    released = enclave.run(analysis, Thresholds(1, 1000)).released
    assert released.columns == ["ward", "sex", "n"]
    assert all(isinstance(row[0], str | None) for row in released.rows)

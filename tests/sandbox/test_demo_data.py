"""Tests for the deterministic synthetic demo assets and their planted rarities."""

from __future__ import annotations

import csv
import hashlib
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from sandbox.cards import Role, parse_card
from sandbox.demo import PLANTED_RARITIES, VICTIM_PATIENT_ID, DemoAsset, write_demo_assets

TABLES = {"hospital.visits": "visits", "insurance.claims": "claims"}
MONEY = re.compile(r"^\d+\.\d{2}$")


def _load(con: duckdb.DuckDBPyConnection, asset: DemoAsset) -> None:
    columns = ", ".join(f"'{c['name']}': '{c['type']}'" for c in asset.card["columns"])
    path = str(asset.csv_path).replace("'", "''")
    con.execute(
        f"CREATE TABLE {TABLES[asset.card['id']]} AS SELECT * FROM "
        f"read_csv('{path}', header = true, auto_detect = false, columns = {{{columns}}})"
    )


def _digests(assets: list[DemoAsset]) -> list[str]:
    return [hashlib.sha256(a.csv_path.read_bytes()).hexdigest() for a in assets]


def _raw_rows(asset: DemoAsset) -> list[dict[str, str]]:
    with asset.csv_path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> list[DemoAsset]:
    return write_demo_assets(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def con(assets: list[DemoAsset]) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    for asset in assets:
        _load(connection, asset)
    return connection


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    return con.execute(sql).fetchone()[0]


def _patients(con: duckdb.DuckDBPyConnection, table: str, where: str) -> list[str]:
    sql = f"SELECT DISTINCT patient_id FROM {table} WHERE {where} ORDER BY 1"
    return [row[0] for row in con.execute(sql).fetchall()]


def test_returns_visits_then_claims_in_one_dir(assets: list[DemoAsset]) -> None:
    assert [a.card["id"] for a in assets] == ["hospital.visits", "insurance.claims"]
    assert all(a.csv_path.is_file() for a in assets)
    assert len({a.csv_path.parent for a in assets}) == 1


def test_same_seed_gives_identical_bytes(tmp_path: Path, assets: list[DemoAsset]) -> None:
    first = write_demo_assets(tmp_path / "one")
    second = write_demo_assets(tmp_path / "two", seed=20261122)
    assert _digests(first) == _digests(second) == _digests(assets)
    assert [a.card for a in first] == [a.card for a in second]


def test_other_seed_changes_data_but_keeps_plants(tmp_path: Path, assets: list[DemoAsset]) -> None:
    other = write_demo_assets(tmp_path / "other", seed=7)
    assert _digests(other) != _digests(assets)
    connection = duckdb.connect()
    for asset in other:
        _load(connection, asset)
    for rarity in PLANTED_RARITIES:
        table = TABLES[rarity["asset"]]
        assert _patients(connection, table, rarity["where"]) == sorted(rarity["patient_ids"])


def test_row_counts_in_range(con: duckdb.DuckDBPyConnection) -> None:
    assert 28_000 <= _scalar(con, "SELECT count(*) FROM visits") <= 32_000
    assert 18_000 <= _scalar(con, "SELECT count(*) FROM claims") <= 22_000
    patients = _scalar(con, "SELECT count(DISTINCT patient_id) FROM visits")
    insured = _scalar(con, "SELECT count(DISTINCT patient_id) FROM claims")
    assert 7_500 <= patients <= 8_500
    assert 0.65 <= insured / patients <= 0.75
    orphans = "SELECT count(*) FROM claims WHERE patient_id NOT IN (SELECT patient_id FROM visits)"
    assert _scalar(con, orphans) == 0


def test_header_matches_card_columns(assets: list[DemoAsset]) -> None:
    for asset in assets:
        with asset.csv_path.open(encoding="utf-8", newline="") as handle:
            header = next(csv.reader(handle))
        assert header == [c["name"] for c in asset.card["columns"]]


def test_every_value_parses_as_declared_type_and_is_present(
    con: duckdb.DuckDBPyConnection, assets: list[DemoAsset]
) -> None:
    for asset in assets:
        table = TABLES[asset.card["id"]]
        described = con.execute(f"DESCRIBE {table}").fetchall()
        assert [(row[0], row[1]) for row in described] == [
            (c["name"], c["type"]) for c in asset.card["columns"]
        ]
        for column in asset.card["columns"]:
            nulls = f"SELECT count(*) FROM {table} WHERE {column['name']} IS NULL"
            assert _scalar(con, nulls) == 0, column["name"]


def test_money_is_written_with_two_decimals(assets: list[DemoAsset]) -> None:
    for asset in assets:
        measures = [c["name"] for c in asset.card["columns"] if c["role"] == "measure"]
        for row in _raw_rows(asset):
            assert all(MONEY.match(row[name]) for name in measures), row


def test_measures_within_bounds(con: duckdb.DuckDBPyConnection, assets: list[DemoAsset]) -> None:
    for asset in assets:
        for column in asset.card["columns"]:
            if column["role"] != "measure":
                continue
            low, high = column["bounds"]
            sql = f"SELECT min({column['name']}), max({column['name']}) FROM "
            smallest, largest = con.execute(sql + TABLES[asset.card["id"]]).fetchone()
            assert low <= smallest <= largest <= high, column["name"]


def test_paid_never_exceeds_claimed_and_is_zero_unless_approved(
    con: duckdb.DuckDBPyConnection,
) -> None:
    assert _scalar(con, "SELECT count(*) FROM claims WHERE paid_amount > claimed_amount") == 0
    unpaid = "SELECT count(*) FROM claims WHERE status <> 'approved' AND paid_amount <> 0"
    assert _scalar(con, unpaid) == 0
    statuses = con.execute("SELECT DISTINCT status FROM claims ORDER BY 1").fetchall()
    assert [s for (s,) in statuses] == ["approved", "pending", "rejected"]


def test_every_column_has_a_known_role(assets: list[DemoAsset]) -> None:
    known = {role.value for role in Role}
    for asset in assets:
        roles = [c["role"] for c in asset.card["columns"]]
        assert set(roles) <= known
        assert roles.count("privacy_unit") == 1


def test_cards_validate_and_match_the_brief(assets: list[DemoAsset]) -> None:
    visits, claims = (parse_card(a.card) for a in assets)
    assert (visits.provider, visits.classification, visits.domain) == (
        "city-hospital",
        "L3",
        "health",
    )
    assert (claims.provider, claims.classification, claims.domain) == ("insurer", "L2", "finance")
    assert visits.rights.holder == "city-hospital"
    assert visits.pricing.per_query_minor == 100
    assert claims.pricing.per_query_minor == 200
    assert visits.column("cost").bounds == (0, 20000)
    assert claims.column("paid_amount").bounds == (0, 50000)
    assert visits.privacy_unit.name == claims.privacy_unit.name == "patient_id"


def test_revenue_shares_sum_to_10000(assets: list[DemoAsset]) -> None:
    for asset in assets:
        assert sum(asset.card["revenue_shares_bp"].values()) == 10_000


def test_formats(con: duckdb.DuckDBPyConnection) -> None:
    checks = {
        "visits": [
            "NOT regexp_full_match(visit_id, 'V[0-9]{7}')",
            "NOT regexp_full_match(patient_id, 'P[0-9]{6}')",
            "NOT regexp_full_match(patient_name, '[A-Z][a-z]+ [A-Z][a-z]+')",
            "NOT regexp_full_match(phone, '1[358][0-9]{9}')",
            "NOT regexp_full_match(facility_code, 'F[0-9]{3}')",
            "NOT regexp_full_match(postcode, '350[0-9]{3}')",
            "age NOT BETWEEN 0 AND 104",
            "sex NOT IN ('F', 'M')",
            "year(visit_date) <> 2024",
        ],
        "claims": [
            "NOT regexp_full_match(patient_id, 'P[0-9]{6}')",
            "NOT regexp_full_match(facility_code, 'F[0-9]{3}')",
            "plan NOT IN ('basic', 'standard', 'premium')",
            "year(claim_month) <> 2024 OR day(claim_month) <> 1",
        ],
    }
    for table, conditions in checks.items():
        for condition in conditions:
            assert _scalar(con, f"SELECT count(*) FROM {table} WHERE {condition}") == 0, condition
    for table, key in (("visits", "visit_id"), ("claims", "claim_id")):
        assert _scalar(con, f"SELECT count(*) - count(DISTINCT {key}) FROM {table}") == 0


def test_vocabularies(con: duckdb.DuckDBPyConnection) -> None:
    def distinct(column: str, table: str = "visits") -> set[str]:
        return {v for (v,) in con.execute(f"SELECT DISTINCT {column} FROM {table}").fetchall()}

    assert distinct("district") == {
        "Gulou", "Taijiang", "Cangshan", "Jinan", "Mawei", "Changle", "Minhou", "Lianjiang",
    }  # fmt: skip
    assert distinct("department") == {
        "Internal Medicine", "Surgery", "Pediatrics", "Obstetrics", "Cardiology", "Oncology",
        "Emergency", "Ophthalmology",
    }  # fmt: skip
    assert 14 <= len(distinct("diagnosis")) <= 18
    assert 10 <= len(distinct("facility_code")) <= 14
    assert distinct("facility_code", "claims") <= distinct("facility_code")


def test_patient_attributes_are_consistent_across_visits(con: duckdb.DuckDBPyConnection) -> None:
    for column in ("patient_name", "phone", "age", "sex", "district", "postcode"):
        sql = (
            "SELECT count(*) FROM (SELECT patient_id FROM visits GROUP BY 1 "
            f"HAVING count(DISTINCT {column}) > 1)"
        )
        assert _scalar(con, sql) == 0, column
    phones = "SELECT count(DISTINCT phone) - count(DISTINCT patient_id) FROM visits"
    assert _scalar(con, phones) == 0
    policies = (
        "SELECT count(*) FROM (SELECT patient_id FROM claims GROUP BY 1 "
        "HAVING count(DISTINCT policy_no) > 1 OR count(DISTINCT plan) > 1)"
    )
    assert _scalar(con, policies) == 0


def test_diagnoses_fit_age_sex_and_department(con: duckdb.DuckDBPyConnection) -> None:
    impossible = [
        "department = 'Obstetrics' AND (sex <> 'F' OR age NOT BETWEEN 18 AND 45)",
        "department = 'Pediatrics' AND age >= 18",
        "diagnosis = 'C50' AND sex <> 'F'",
        "diagnosis = 'H25' AND age < 50",
        "diagnosis IN ('I25', 'E11') AND age < 30",
    ]
    for condition in impossible:
        assert _scalar(con, f"SELECT count(*) FROM visits WHERE {condition}") == 0, condition


@pytest.mark.parametrize("rarity", PLANTED_RARITIES, ids=lambda r: r["name"])
def test_planted_rarity_is_exactly_as_documented(
    con: duckdb.DuckDBPyConnection, rarity: dict[str, Any]
) -> None:
    table = TABLES[rarity["asset"]]
    assert _patients(con, table, rarity["where"]) == sorted(rarity["patient_ids"])
    assert _scalar(con, f"SELECT count(*) FROM {table} WHERE {rarity['where']}") == rarity["rows"]
    assert rarity["description"]


def test_victim_is_unique_and_exposed_as_documented(con: duckdb.DuckDBPyConnection) -> None:
    victim = next(r for r in PLANTED_RARITIES if r["patient_ids"] == (VICTIM_PATIENT_ID,))
    assert _patients(con, "visits", "age >= 100") == [VICTIM_PATIENT_ID]
    rows = con.execute(
        "SELECT age, district, diagnosis, department, cost FROM visits "
        f"WHERE patient_id = '{VICTIM_PATIENT_ID}' ORDER BY cost"
    ).fetchall()
    assert {row[:4] for row in rows} == {(104, victim["district"], victim["diagnosis"], "Oncology")}
    assert [row[4] for row in rows] == [Decimal(cost) for cost in victim["costs"]]
    top = con.execute("SELECT patient_id FROM visits ORDER BY cost DESC LIMIT 4").fetchall()
    assert [p for (p,) in top] == [VICTIM_PATIENT_ID] * 3 + [top[3][0]]
    assert top[3][0] != VICTIM_PATIENT_ID
    claims = f"SELECT count(*) FROM claims WHERE patient_id = '{VICTIM_PATIENT_ID}'"
    assert _scalar(con, claims) == 3


@pytest.mark.parametrize(
    ("table", "group", "excluded"),
    [
        ("visits", "district", ""),
        ("visits", "department", ""),
        ("visits", "sex", ""),
        ("visits", "age // 10", "age >= 100"),
        ("visits", "month(visit_date)", ""),
        ("visits", "diagnosis", "diagnosis = 'Q87'"),
        ("visits", "facility_code", "facility_code = 'F999'"),
        ("visits", "postcode", "postcode = '350999'"),
        ("claims", "plan", ""),
        ("claims", "status", ""),
        ("claims", "claim_month", ""),
        ("claims", "facility_code", "facility_code = 'F999'"),
    ],
)
def test_honest_groups_hold_many_patients(
    con: duckdb.DuckDBPyConnection, table: str, group: str, excluded: str
) -> None:
    where = f"WHERE NOT ({excluded})" if excluded else ""
    sql = (
        "SELECT min(n) FROM (SELECT count(DISTINCT patient_id) AS n "
        f"FROM {table} {where} GROUP BY {group})"
    )
    assert _scalar(con, sql) >= 100

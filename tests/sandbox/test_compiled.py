"""The compiled SQL on its own: thresholds applied inside DuckDB, in every released branch."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from sandbox.cards import parse_card
from sandbox.demo import write_demo_assets
from sandbox.guard import analyse
from sandbox.store import catalog_name


@pytest.fixture(scope="module")
def cards():
    with tempfile.TemporaryDirectory() as folder:
        return {a.card["id"]: parse_card(a.card) for a in write_demo_assets(Path(folder))}


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

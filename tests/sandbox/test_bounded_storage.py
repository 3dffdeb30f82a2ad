"""Measures are stored clamped and DOUBLEs canonical, so scans read them as stored; assets
stored before that still have every scan do it."""

from __future__ import annotations

import json

import duckdb
import pytest

from sandbox.enclave import Enclave, Thresholds
from sandbox.store import AssetStore
from sandbox.worker import WorkerConfig

CARD = {
    "id": "lab.tests",
    "title": "Lab tests",
    "provider": "lab",
    "classification": "L2",
    "domain": "health",
    "rights": {"holder": "lab"},
    "columns": [
        {"name": "person", "type": "VARCHAR", "role": "privacy_unit"},
        {"name": "ward", "type": "VARCHAR", "role": "dimension"},
        {"name": "dose", "type": "DECIMAL(8,2)", "role": "measure", "bounds": [0, 100]},
        {"name": "level", "type": "DOUBLE", "role": "measure", "bounds": [-10, 10]},
        {"name": "score", "type": "DOUBLE", "role": "dimension"},
    ],
    "revenue_shares_bp": {"lab": 10000},
}
ROWS = [("p1", "a", "-5", "-0.0", "-0.0"), ("p2", "a", "250", "nan", "nan"),
        ("p3", "a", "40.5", "99", "1e30")] + [(f"q{i}", "a", "1", "1", "2") for i in range(9)]  # fmt: skip
SUM_SQL = "SELECT ward, SUM(dose) AS dose, SUM(level) AS level FROM lab.tests GROUP BY ward"


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "tests.csv"
    path.write_text("person,ward,dose,level,score\n" + "".join(",".join(r) + "\n" for r in ROWS))
    return path


def _stored(store: AssetStore) -> list[tuple]:
    (attachment,) = store.attachments()
    connection = duckdb.connect()
    connection.execute(
        f"ATTACH '{attachment.path}' AS s (ENCRYPTION_KEY '{attachment.key}', READ_ONLY)"
    )
    return connection.execute(
        "SELECT person, dose, level, score, sign(level), sign(score) FROM s.main.data "
        "ORDER BY person"
    ).fetchall()


def test_measures_are_stored_clamped_and_doubles_canonical(tmp_path, source) -> None:
    store = AssetStore(tmp_path / "assets", tmp_path / "keyring", b"k" * 32)
    assert store.register(CARD, source).bounded
    rows = {row[0]: row[1:] for row in _stored(store)}
    assert float(rows["p1"][0]) == 0 and float(rows["p2"][0]) == 100  # clamped dose
    assert rows["p1"][1] == 0 and rows["p1"][3] == 0  # -0.0 stored as 0
    assert rows["p2"][1] == 10 and rows["p2"][2] is None  # NaN clamps high; unbounded: NULL
    assert rows["p3"][1] == 10 and rows["p3"][2] is None  # clamped; 1e30 past the round trip


def test_scans_bound_only_what_was_not_stored_bounded(tmp_path, source) -> None:
    enclave = Enclave(tmp_path / "assets", tmp_path / "keyring", b"k" * 32, WorkerConfig())
    enclave.store.register(CARD, source)
    fresh = enclave.analyse(SUM_SQL)
    assert "CASE WHEN" not in fresh.compiled.sql(10)
    answer = enclave.run(fresh, Thresholds(10, 100)).released.rows
    enclave.close()
    # The same data as a store made before bounding at ingest wrote it: every scan bounds.
    meta_path = tmp_path / "assets" / "lab.tests" / "meta.json"
    meta = json.loads(meta_path.read_text())
    del meta["bounded"]
    meta_path.write_text(json.dumps(meta))
    older = Enclave(tmp_path / "assets", tmp_path / "keyring", b"k" * 32, WorkerConfig())
    legacy = older.analyse(SUM_SQL)
    assert "CASE WHEN" in legacy.compiled.sql(10)
    assert older.run(legacy, Thresholds(10, 100)).released.rows == answer
    older.close()
    assert answer == [["a", 149.5, 29.0]]  # 0 + 100 + 40.5 + 9; 0 + 10 (NaN) + 10 + 9

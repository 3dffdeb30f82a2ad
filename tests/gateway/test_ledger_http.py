"""The ledger over HTTP: every decision is an entry, receipts match, tampering is caught."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

from ledger import leaf_hash, verify_inclusion


def _entries(demo, after: int | None = None) -> list[dict]:
    params = {"limit": 1000} | ({"after": after} if after is not None else {})
    with demo.client("supervisor") as client:
        return client.get("/v1/ledger/entries", params=params).json()["items"]


def _last_index(demo) -> int:
    with demo.client("supervisor") as client:
        return client.get("/v1/ledger/checkpoint").json()["tree_size"] - 1


def test_every_decision_is_recorded(demo) -> None:
    before = _last_index(demo)
    ok = demo.query("SELECT sex, COUNT(*) AS n FROM hospital.visits GROUP BY sex").json()
    rejected = demo.query("SELECT patient_name FROM hospital.visits")
    denied = demo.query("SELECT COUNT(*) AS n FROM hospital.visits", who="fintech")
    assert rejected.status_code == 422 and denied.status_code == 403
    records = [json.loads(e["data"]) for e in _entries(demo, after=before)]
    outcomes = [r["outcome"] for r in records if r.get("type") == "query"]
    assert outcomes[-3:] == ["released", "rejected", "denied"]
    released = next(r for r in records if r.get("query_id") == ok["query_id"])
    assert released["assets"] == ["hospital.visits"]
    assert released["decision"]["allow"] is True
    assert len(released["decision"]["decision_id"]) == 32
    assert released["cost"] == ok["cost"]
    assert "P000042" not in json.dumps(records)


def test_receipt_matches_entry_and_inclusion_proof(demo) -> None:
    body = demo.query("SELECT plan, COUNT(*) AS n FROM insurance.claims GROUP BY plan").json()
    index = body["receipt"]["ledger_index"]
    entry = _entries(demo, after=index - 1)[0]
    assert entry["index"] == index
    assert entry["leaf_hash"] == body["receipt"]["leaf_hash"]
    assert leaf_hash(entry["data"].encode()).hex() == entry["leaf_hash"]
    with demo.client("supervisor") as client:
        checkpoint = client.get("/v1/ledger/checkpoint").json()
        path = client.get(
            "/v1/ledger/proof/inclusion", params={"index": index, "size": checkpoint["tree_size"]}
        ).json()["audit_path"]
        assert client.get("/v1/ledger/public-key").json()["public_key"]
    assert checkpoint["note"].splitlines()[1] == str(checkpoint["tree_size"])
    verify_inclusion(
        bytes.fromhex(entry["leaf_hash"]),
        index,
        checkpoint["tree_size"],
        [bytes.fromhex(h) for h in path],
        bytes.fromhex(checkpoint["root_hash"]),
    )


def _verify(home) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "ledger", "verify", "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_ledger_verify_detects_tampering(fresh_demo) -> None:
    server = fresh_demo
    sql = "SELECT sex, COUNT(*) AS n FROM hospital.visits GROUP BY sex"
    assert server.query(sql).status_code == 200
    assert _verify(server.home).returncode == 0
    with sqlite3.connect(server.home / "ledger.db") as db:
        index, data = db.execute(
            "SELECT idx, data FROM ledger_entries ORDER BY idx DESC LIMIT 1"
        ).fetchone()
        forged = data.replace('"outcome":"released"', '"outcome":"denied"')
        assert forged != data
        db.execute("UPDATE ledger_entries SET data = ? WHERE idx = ?", (forged, index))
    result = _verify(server.home)
    assert result.returncode == 1, result.stdout
    assert json.loads(result.stdout)["ok"] is False


def test_no_result_without_a_durable_record(fresh_demo) -> None:
    """While the ledger cannot be written, queries fail closed and release nothing."""
    sql = "SELECT sex, COUNT(*) AS n FROM hospital.visits GROUP BY sex"
    blocker = sqlite3.connect(fresh_demo.home / "ledger.db", timeout=1)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        response = fresh_demo.query(sql)
    finally:
        blocker.rollback()
        blocker.close()
    body = response.json()
    assert response.status_code == 503, body
    assert body["error"]["code"] == "LEDGER_UNAVAILABLE"
    assert "rows" not in body and "sex" not in response.text
    assert fresh_demo.query(sql).status_code == 200


def test_out_of_range_ledger_parameters_are_clean_errors(demo) -> None:
    with demo.client("supervisor") as client:
        for path in (
            "/v1/ledger/entries?after=9223372036854775808",
            "/v1/ledger/proof/inclusion?index=0&size=99999999999999999999999",
            "/v1/ledger/proof/consistency?from=99999999999999999999&to=99999999999999999999",
            "/v1/ledger/proof/inclusion?index=5&size=2",
        ):
            response = client.get(path)
            assert 400 <= response.status_code < 500, (path, response.text)
            assert set(response.json()["error"]) == {"code", "message", "violations"}

"""Honest analysis over HTTP: group-bys, joins, CTEs, unions, paging, receipts and prices."""

from __future__ import annotations


def test_group_by_answers_with_receipt(demo) -> None:
    response = demo.query(
        "SELECT district, COUNT(DISTINCT patient_id) AS patients, AVG(cost) AS avg_cost "
        "FROM hospital.visits GROUP BY district ORDER BY district"
    )
    body = response.json()
    assert response.status_code == 200, body
    assert body["columns"] == ["district", "patients", "avg_cost"]
    assert len(body["rows"]) == 8
    assert [row[0] for row in body["rows"]] == sorted(row[0] for row in body["rows"])
    assert all(row[1] >= 10 for row in body["rows"])
    assert body["receipt"]["ledger_index"] >= 0 and len(body["receipt"]["leaf_hash"]) == 64
    assert body["cost"] == {
        "amount_minor": 0,
        "currency": "CNY",
        "plan": "free",
        "assets": {"hospital.visits": 0},
    }
    assert body["query_id"].startswith("q_")


def test_counts_match_the_source(demo) -> None:
    total = demo.query("SELECT COUNT(*) AS n FROM hospital.visits").json()
    assert total["rows"] == [[30000]]
    by_sex = demo.query("SELECT sex, COUNT(*) AS n FROM hospital.visits GROUP BY sex").json()
    assert sum(row[1] for row in by_sex["rows"]) == 30000


def test_join_on_privacy_unit(demo) -> None:
    body = demo.query(
        "SELECT c.plan, COUNT(DISTINCT v.patient_id) AS patients, SUM(c.paid_amount) AS paid "
        "FROM hospital.visits v JOIN insurance.claims c ON v.patient_id = c.patient_id "
        "GROUP BY c.plan ORDER BY c.plan"
    ).json()
    assert [row[0] for row in body["rows"]] == ["basic", "premium", "standard"]
    assert all(row[1] > 100 for row in body["rows"])


def test_join_on_join_key_and_left_join(demo) -> None:
    body = demo.query(
        "SELECT v.district, COUNT(*) AS n FROM hospital.visits v "
        "LEFT JOIN insurance.claims c ON v.facility_code = c.facility_code "
        "AND v.patient_id = c.patient_id GROUP BY v.district"
    ).json()
    assert len(body["rows"]) == 8


def test_cte_and_derived_dimensions(demo) -> None:
    body = demo.query(
        "WITH banded AS (SELECT CASE WHEN age < 18 THEN 'child' WHEN age < 65 THEN 'adult' "
        "ELSE 'senior' END AS band, cost, patient_id FROM hospital.visits) "
        "SELECT band, COUNT(*) AS visits, SUM(cost) AS total FROM banded GROUP BY band "
        "ORDER BY visits DESC"
    ).json()
    assert {row[0] for row in body["rows"]} == {"child", "adult", "senior"}
    counts = [row[1] for row in body["rows"]]
    assert counts == sorted(counts, reverse=True)


def test_date_functions_and_filters(demo) -> None:
    body = demo.query(
        "SELECT date_trunc('month', visit_date) AS month, COUNT(*) AS n FROM hospital.visits "
        "WHERE visit_date >= DATE '2024-07-01' AND sex = 'F' GROUP BY month ORDER BY month"
    ).json()
    assert [row[0][:7] for row in body["rows"]] == [f"2024-{m:02d}" for m in range(7, 13)]


def test_limit_and_offset_apply_after_suppression(demo) -> None:
    body = demo.query(
        "SELECT department, COUNT(*) AS n FROM hospital.visits GROUP BY department "
        "ORDER BY n DESC LIMIT 2 OFFSET 1"
    ).json()
    full = demo.query(
        "SELECT department, COUNT(*) AS n FROM hospital.visits GROUP BY department ORDER BY n DESC"
    ).json()
    assert body["rows"] == full["rows"][1:3]


def test_union_of_aggregates(demo) -> None:
    body = demo.query(
        "SELECT 'visits' AS source, COUNT(DISTINCT patient_id) AS patients FROM hospital.visits "
        "UNION ALL SELECT 'claims' AS source, COUNT(DISTINCT patient_id) AS patients "
        "FROM insurance.claims"
    ).json()
    assert {row[0] for row in body["rows"]} == {"visits", "claims"}


def test_paid_purpose_is_charged(demo) -> None:
    response = demo.query(
        "SELECT plan, COUNT(*) AS claims FROM insurance.claims GROUP BY plan", who="fintech"
    )
    body = response.json()
    assert response.status_code == 200, body
    assert body["cost"]["amount_minor"] > 0 and body["cost"]["currency"] == "CNY"


def test_paid_query_is_metered_priced_and_posted(demo) -> None:
    import json

    body = demo.query(
        "SELECT plan, COUNT(*) AS claims FROM insurance.claims GROUP BY plan", who="fintech"
    ).json()
    with demo.client("supervisor") as client:
        rows = client.get("/v1/assets/insurance.claims").json()["row_count"]
        item = client.get(
            "/v1/ledger/entries", params={"after": body["receipt"]["ledger_index"] - 1, "limit": 1}
        ).json()["items"][0]
    entry = json.loads(item["data"])
    # The claims card: 200 per query, 2 per 1,000 rows up to 20,000 and 1 per 1,000 above.
    expected = 200 + -(-(min(rows, 20_000) * 2 + max(0, rows - 20_000)) // 1000)
    assert body["cost"] == {
        "amount_minor": expected,
        "currency": "CNY",
        "plan": "standard",
        "assets": {"insurance.claims": expected},  # what each asset earned
    }
    assert entry["cost"] == body["cost"]
    usage = entry["usage"]
    assert usage["rows_scanned"] == {"insurance.claims": rows}
    assert usage["rows_released"] == len(body["rows"])
    assert usage["bytes_returned"] > 0 and usage["cpu_ms"] >= 0
    assert usage["suppressed_rows"] == body["suppressed_rows"]
    assert entry["obligations"]["price_plan"] == "standard"
    postings = dict(entry["postings"])
    assert postings.pop("developer:fintech") == -expected
    shares = {"party:insurer": 7500, "party:operator": 1500, "party:platform": 1000}
    assert set(postings) == set(shares) and sum(postings.values()) == expected
    for account, share in shares.items():
        assert abs(postings[account] - expected * share / 10_000) < 1


def test_cli_query_client(demo) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "query",
            "--url",
            demo.url,
            "SELECT sex, COUNT(*) AS n FROM hospital.visits GROUP BY sex",
        ],
        env={"VEIL_API_KEY": demo.keys["analyst"], "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert '"receipt"' in result.stdout


def test_rounding_and_date_parts(demo) -> None:
    body = demo.query(
        "SELECT year(visit_date) AS y, EXTRACT(quarter FROM visit_date) AS q, "
        "ROUND(AVG(cost), -1) AS mean, COUNT(*) AS n FROM hospital.visits "
        "WHERE visit_date >= '2024-07-01' GROUP BY y, q ORDER BY q"
    ).json()
    assert [row[:2] for row in body["rows"]] == [[2024, 3], [2024, 4]]
    assert all(row[2] % 10 == 0 for row in body["rows"])


def test_row_order_depends_on_values_only(demo) -> None:
    """Unordered results and ties come out sorted by value, never in the order rows were read."""
    body = demo.query(
        "SELECT department, sex, COUNT(*) AS n FROM hospital.visits GROUP BY 1, 2"
    ).json()
    assert body["rows"] == sorted(body["rows"], key=lambda row: (row[0], row[1], row[2]))
    ties = demo.query(
        "SELECT district, 1 AS one FROM hospital.visits GROUP BY district ORDER BY one"
    ).json()
    assert [row[0] for row in ties["rows"]] == sorted(row[0] for row in ties["rows"])


def test_computed_doubles_keep_null(demo) -> None:
    body = demo.query(
        "SELECT COUNT(*) AS n FROM hospital.visits WHERE TRY_CAST(district AS DOUBLE) * 2 IS NULL"
    ).json()
    assert body["rows"] == [[30000]]

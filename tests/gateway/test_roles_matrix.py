"""Every column role in every clause, over HTTP: allowed roles answer, the rest are rejected."""

from __future__ import annotations

import pytest

COLUMNS = {
    "privacy_unit": "patient_id",
    "identifier": "patient_name",
    "join_key": "facility_code",
    "dimension": "district",
    "filter_only": "postcode",
    "measure": "cost",
}
CLAIMS_COLUMN = {
    "privacy_unit": "patient_id",
    "identifier": "policy_no",
    "join_key": "facility_code",
    "dimension": "plan",
    "filter_only": "plan",
    "measure": "paid_amount",
}

CLAUSES: dict[str, tuple[str, set[str]]] = {
    "select": (
        "SELECT {c}, COUNT(*) AS n FROM hospital.visits GROUP BY {c}",
        {"dimension"},
    ),
    "where": (
        "SELECT COUNT(*) AS n FROM hospital.visits WHERE {c} IS NOT NULL",
        {"dimension", "filter_only"},
    ),
    "where_comparison": (
        "SELECT COUNT(*) AS n FROM hospital.visits WHERE {c} <> 'x' OR {c} IS NULL",
        {"dimension", "filter_only"},
    ),
    "group_by": ("SELECT COUNT(*) AS n FROM hospital.visits GROUP BY {c}", {"dimension"}),
    "having": (
        "SELECT district, COUNT(*) AS n FROM hospital.visits GROUP BY district HAVING SUM({c}) > 0",
        {"measure"},
    ),
    "order_by": (
        "SELECT district, COUNT(*) AS n FROM hospital.visits GROUP BY district "
        "ORDER BY SUM({c}) DESC",
        {"measure"},
    ),
    "count_distinct": (
        "SELECT COUNT(DISTINCT {c}) AS n FROM hospital.visits",
        {"privacy_unit"},
    ),
    "count": ("SELECT COUNT({c}) AS n FROM hospital.visits", {"dimension", "measure"}),
    "sum": ("SELECT SUM({c}) AS n FROM hospital.visits", {"measure"}),
    "avg": ("SELECT AVG({c}) AS n FROM hospital.visits", {"measure"}),
    "expression_in_aggregate": ("SELECT SUM({c} * 2) AS n FROM hospital.visits", set()),
    "join_on": (
        "SELECT COUNT(*) AS n FROM hospital.visits v JOIN insurance.claims c ON v.{c} = c.{claims}",
        {"privacy_unit", "join_key"},
    ),
    "cte": (
        "WITH t AS (SELECT {c} AS x, patient_id FROM hospital.visits) SELECT COUNT(*) AS n FROM t",
        {"privacy_unit", "join_key", "dimension", "filter_only", "measure"},
    ),
    "cte_expression": (
        "WITH t AS (SELECT lower({c}) AS x FROM hospital.visits) SELECT COUNT(*) AS n FROM t",
        {"dimension", "filter_only"},
    ),
    "subquery_then_group": (
        "SELECT x, COUNT(*) AS n FROM (SELECT {c} AS x FROM hospital.visits) t GROUP BY x",
        {"dimension"},
    ),
    "subquery_then_sum": (
        "SELECT SUM(x) AS n FROM (SELECT {c} AS x FROM hospital.visits) t",
        {"measure"},
    ),
    "subquery_then_where": (
        "SELECT COUNT(*) AS n FROM (SELECT {c} AS x, district FROM hospital.visits) t "
        "WHERE x IS NOT NULL",
        {"dimension", "filter_only"},
    ),
    "union": (
        "SELECT {c} AS k, COUNT(*) AS n FROM hospital.visits GROUP BY {c} "
        "UNION ALL SELECT plan AS k, COUNT(*) AS n FROM insurance.claims GROUP BY plan",
        {"dimension"},
    ),
    "union_in_subquery": (
        "SELECT COUNT(*) AS n FROM (SELECT {c} AS x, patient_id FROM hospital.visits "
        "UNION ALL SELECT {claims} AS x, patient_id FROM insurance.claims) t",
        set(),  # one asset's units would pad another's groups
    ),
}


@pytest.mark.parametrize("role", sorted(COLUMNS))
@pytest.mark.parametrize("clause", sorted(CLAUSES))
def test_role_in_clause(demo, role: str, clause: str) -> None:
    template, allowed = CLAUSES[clause]
    sql = template.format(c=COLUMNS[role], claims=CLAIMS_COLUMN[role])
    response = demo.query(sql)
    body = response.json()
    if role in allowed:
        assert response.status_code == 200, (sql, body)
        assert "rows" in body and "receipt" in body
    else:
        assert response.status_code == 422, (sql, body)
        assert body["error"]["code"] == "QUERY_REJECTED"
        assert body["error"]["violations"], body

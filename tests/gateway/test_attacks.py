"""The known attacks on the enclave that apply to SQL, tried through the HTTP API."""

from __future__ import annotations

import pytest

from sandbox.demo import VICTIM_PATIENT_ID

# Values only the planted rare records hold: none may ever appear in any response.
SECRETS = [VICTIM_PATIENT_ID, "18500", "18750", "19100", "350999", "P005555", "P003117"]

REJECTED: list[tuple[str, str]] = [
    # identifiers and privacy units
    (
        "SELECT patient_name, COUNT(*) FROM hospital.visits GROUP BY patient_name",
        "identifier_column",
    ),
    ("SELECT COUNT(*) FROM hospital.visits WHERE phone = '13800000000'", "identifier_column"),
    ("SELECT COUNT(*) FROM hospital.visits WHERE patient_name LIKE 'Wang%'", "identifier_column"),
    ("SELECT COUNT(*) FROM hospital.visits WHERE visit_id > 'V0001000'", "identifier_column"),
    (
        "SELECT patient_id, COUNT(*) FROM hospital.visits GROUP BY patient_id",
        "privacy_unit_in_group_by",
    ),
    (
        f"SELECT COUNT(*) FROM hospital.visits WHERE patient_id = '{VICTIM_PATIENT_ID}'",
        "privacy_unit_in_where",
    ),
    (
        "SELECT COUNT(*) FROM hospital.visits WHERE patient_id LIKE 'P00004%'",
        "privacy_unit_in_where",
    ),
    ("SELECT COUNT(patient_id) FROM hospital.visits", "privacy_unit_in_aggregate"),
    ("SELECT * FROM hospital.visits", "identifier_column"),
    ("SELECT postcode, COUNT(*) FROM hospital.visits GROUP BY postcode", "filter_only_in_group_by"),
    ("SELECT COUNT(*) FROM hospital.visits WHERE cost > 18000", "measure_in_where"),
    ("SELECT cost, COUNT(*) FROM hospital.visits GROUP BY cost", "measure_in_group_by"),
    # extreme values and disallowed aggregates
    ("SELECT MAX(cost) FROM hospital.visits", "construct_not_allowed"),
    ("SELECT MIN(age) FROM hospital.visits", "construct_not_allowed"),
    ("SeLeCt mAx(cost) FrOm hospital.visits", "construct_not_allowed"),
    ("SELECT arg_max(district, cost) FROM hospital.visits", "construct_not_allowed"),
    ("SELECT first(cost) FROM hospital.visits", "construct_not_allowed"),
    ("SELECT any_value(district) FROM hospital.visits", "construct_not_allowed"),
    # The tests' demo answers under thresholds alone, where a quantile is one person's value.
    ("SELECT median(cost) FROM hospital.visits", "quantile_needs_dp"),
    ("SELECT quantile_cont(cost, 0.99) FROM hospital.visits", "quantile_needs_dp"),
    ("SELECT mode(age) FROM hospital.visits", "construct_not_allowed"),
    ("SELECT stddev(cost) FROM hospital.visits", "construct_not_allowed"),
    ("SELECT SUM(DISTINCT cost) FROM hospital.visits", "aggregate_argument"),
    # list and string aggregates
    ("SELECT string_agg(district, ',') FROM hospital.visits", "construct_not_allowed"),
    ("SELECT list(age) FROM hospital.visits", "construct_not_allowed"),
    ("SELECT array_agg(age) FROM hospital.visits", "construct_not_allowed"),
    ("SELECT group_concat(district) FROM hospital.visits", "construct_not_allowed"),
    ("SELECT histogram(age) FROM hospital.visits", "construct_not_allowed"),
    # conditional aggregation narrows an aggregate below the threshold
    (
        "SELECT SUM(CASE WHEN age = 104 THEN cost ELSE 0 END) FROM hospital.visits",
        "aggregate_argument",
    ),
    ("SELECT COUNT(CASE WHEN age = 104 THEN 1 END) FROM hospital.visits", "aggregate_argument"),
    ("SELECT COUNT(*) FILTER (WHERE age = 104) FROM hospital.visits", "construct_not_allowed"),
    ("SELECT SUM(cost * (age = 104)::INTEGER) FROM hospital.visits", "aggregate_argument"),
    (
        "SELECT SUM(x) FROM (SELECT CASE WHEN age = 104 THEN cost END AS x FROM hospital.visits) t",
        "measure_in_expression",
    ),
    # error and data-dependent-error channels
    ("SELECT COUNT(*) FROM hospital.visits WHERE error('boom') IS NULL", "construct_not_allowed"),
    ("SELECT COUNT(*) FROM hospital.visits WHERE ln(age - 104) > 0", "construct_not_allowed"),
    ("SELECT COUNT(*) FROM hospital.visits WHERE sqrt(age - 104) > 0", "construct_not_allowed"),
    ("SELECT COUNT(*) FROM hospital.visits WHERE district = age", "implicit_cast"),
    (
        "SELECT COUNT(*) FROM hospital.visits WHERE CASE WHEN age = 104 THEN district ELSE 1 END = 1",
        "implicit_cast",
    ),
    ("SELECT COUNT(*) FROM hospital.visits WHERE coalesce(district, 0) = 1", "implicit_cast"),
    ("SELECT COUNT(*) FROM hospital.visits WHERE age IN (district, 1)", "implicit_cast"),
    (
        "SELECT COUNT(*) FROM hospital.visits WHERE CAST(age AS INTERVAL) IS NULL",
        "cast_type_not_allowed",
    ),
    (
        "SELECT COUNT(*) FROM hospital.visits WHERE make_date(age, 13, 1) IS NULL",
        "construct_not_allowed",
    ),
    (
        "SELECT COUNT(*) FROM hospital.visits WHERE repeat(district, 100000000) = ''",
        "construct_not_allowed",
    ),
    (
        "SELECT COUNT(*) FROM hospital.visits WHERE regexp_matches(district, '(')",
        "construct_not_allowed",
    ),
    # table, file and catalog functions
    ("SELECT * FROM read_csv('/etc/passwd')", "construct_not_allowed"),
    ("SELECT COUNT(*) FROM read_text('/etc/passwd')", "construct_not_allowed"),
    ("SELECT COUNT(*) FROM read_parquet('/tmp/x.parquet')", "construct_not_allowed"),
    ("SELECT COUNT(*) FROM '/etc/passwd'", "unknown_table"),
    ("SELECT COUNT(*) FROM glob('/*')", "construct_not_allowed"),
    ("SELECT COUNT(*) FROM range(10)", "construct_not_allowed"),
    ("SELECT COUNT(*) FROM duckdb_settings()", "construct_not_allowed"),
    ("SELECT COUNT(*) FROM duckdb_tables()", "construct_not_allowed"),
    ("SELECT COUNT(*) FROM pragma_table_info('x')", "construct_not_allowed"),
    ("SELECT COUNT(*) FROM query_table('hospital.visits')", "construct_not_allowed"),
    ("SELECT COUNT(*) FROM information_schema.tables", "unknown_table"),
    ("SELECT COUNT(*) FROM asset_9a1b.main.data", "construct_not_allowed"),
    ("SELECT COUNT(*) FROM hospital.visits WHERE facility_code = 'F999'", "join_key_in_where"),
    ("SELECT COUNT(*) FROM main.data", "unknown_table"),
    (
        "SELECT COUNT(*) FROM hospital.visits WHERE current_setting('threads') = '1'",
        "construct_not_allowed",
    ),
    (
        "SELECT COUNT(*) FROM hospital.visits WHERE getenv('HOME') = '/root'",
        "construct_not_allowed",
    ),
    ("SELECT COUNT(*) FROM hospital.visits WHERE version() = 'v1'", "construct_not_allowed"),
    (
        "SELECT COUNT(*) FROM hospital.visits WHERE current_database() = 'x'",
        "construct_not_allowed",
    ),
    # statements other than one SELECT
    ("COPY (SELECT * FROM hospital.visits) TO '/tmp/out.csv'", "not_a_select"),
    ("COPY hospital.visits TO '/tmp/out.csv'", "not_a_select"),
    ("EXPORT DATABASE '/tmp/out'", "syntax"),
    ("ATTACH '/tmp/other.db' AS other", "not_a_select"),
    ("INSTALL httpfs", "not_a_select"),
    ("LOAD httpfs", "not_a_select"),
    ("SET enable_external_access = true", "not_a_select"),
    ("RESET lock_configuration", "not_a_select"),
    ("PRAGMA database_list", "not_a_select"),
    ("EXPLAIN SELECT COUNT(*) FROM hospital.visits", "not_a_select"),
    ("EXPLAIN ANALYZE SELECT COUNT(*) FROM hospital.visits", "not_a_select"),
    ("SUMMARIZE hospital.visits", "not_a_select"),
    ("DESCRIBE hospital.visits", "not_a_select"),
    ("CALL pragma_version()", "not_a_select"),
    ("CREATE TABLE x AS SELECT * FROM hospital.visits", "not_a_select"),
    ("DROP TABLE hospital.visits", "not_a_select"),
    ("DELETE FROM hospital.visits", "not_a_select"),
    ("UPDATE hospital.visits SET cost = 0", "not_a_select"),
    ("INSERT INTO hospital.visits SELECT * FROM hospital.visits", "not_a_select"),
    ("SELECT COUNT(*) FROM hospital.visits; SELECT 1", "multiple_statements"),
    (
        "SELECT COUNT(*) FROM hospital.visits; COPY hospital.visits TO '/tmp/x'",
        "multiple_statements",
    ),
    # joins that amplify or cross
    (
        "SELECT COUNT(*) FROM hospital.visits a JOIN hospital.visits b ON a.patient_id = b.patient_id",
        "asset_repeated",
    ),
    ("SELECT COUNT(*) FROM hospital.visits v, insurance.claims c", "cross_join"),
    (
        "SELECT COUNT(*) FROM hospital.visits v CROSS JOIN insurance.claims c",
        "join_kind_not_allowed",
    ),
    (
        "SELECT COUNT(*) FROM hospital.visits v JOIN insurance.claims c ON v.district = c.plan",
        "join_condition",
    ),
    (
        "SELECT COUNT(*) FROM hospital.visits v JOIN insurance.claims c ON v.patient_id = c.facility_code",
        "join_condition",
    ),
    (
        "SELECT COUNT(*) FROM hospital.visits v JOIN insurance.claims c ON v.patient_id <> c.patient_id",
        "join_condition",
    ),
    ("SELECT COUNT(*) FROM hospital.visits v JOIN insurance.claims c ON true", "join_condition"),
    (
        "SELECT COUNT(*) FROM hospital.visits v JOIN insurance.claims c USING (patient_id)",
        "construct_not_allowed",
    ),
    (
        "SELECT COUNT(*) FROM hospital.visits v NATURAL JOIN insurance.claims c",
        "construct_not_allowed",
    ),
    (
        "SELECT COUNT(*) FROM hospital.visits v POSITIONAL JOIN insurance.claims c",
        "construct_not_allowed",
    ),
    (
        "SELECT COUNT(*) FROM hospital.visits v ASOF JOIN insurance.claims c ON v.patient_id = c.patient_id",
        "construct_not_allowed",
    ),
    (
        "WITH t AS (SELECT patient_id FROM hospital.visits) SELECT COUNT(*) FROM t a JOIN t b ON a.patient_id = b.patient_id",
        "cte_reused",
    ),
    # subqueries and windows that escape the threshold
    (
        "SELECT COUNT(*) FROM hospital.visits WHERE age = (SELECT COUNT(*) FROM insurance.claims)",
        "subquery_in_expression",
    ),
    (
        "SELECT COUNT(*) FROM hospital.visits WHERE EXISTS (SELECT 1 FROM insurance.claims)",
        "construct_not_allowed",
    ),
    (
        "SELECT COUNT(*) FROM hospital.visits WHERE district IN (SELECT plan FROM insurance.claims)",
        "construct_not_allowed",
    ),
    ("SELECT district, COUNT(*) OVER () FROM hospital.visits", "construct_not_allowed"),
    (
        "SELECT SUM(cost) FROM (SELECT cost, patient_id FROM hospital.visits ORDER BY cost DESC LIMIT 1) t",
        "order_in_subquery",
    ),
    (
        "SELECT COUNT(*) FROM (SELECT DISTINCT district FROM hospital.visits) t",
        "distinct_in_subquery",
    ),
    (
        "SELECT SUM(n) FROM (SELECT district, COUNT(*) AS n FROM hospital.visits GROUP BY district) t",
        "group_in_subquery",
    ),
    ("SELECT district FROM hospital.visits", "not_aggregate"),
    (
        "WITH RECURSIVE r AS (SELECT 1 AS x UNION ALL SELECT x + 1 FROM r) SELECT COUNT(*) FROM r",
        "construct_not_allowed",
    ),
    ("SELECT COUNT(*) FROM (VALUES (1), (2)) t(x)", "construct_not_allowed"),
    ("SELECT 1", "no_asset"),
    # renaming two columns to one name must not launder a role
    (
        "SELECT a.x, COUNT(*) FROM (SELECT postcode AS x, age AS x FROM hospital.visits) AS a GROUP BY a.x",
        "duplicate_column_name",
    ),
    (
        "SELECT COUNT(*) FROM (SELECT cost AS c, age AS c FROM hospital.visits) AS a WHERE a.c > 18000",
        "duplicate_column_name",
    ),
    (
        "WITH a AS (SELECT patient_id AS x, age AS x, cost FROM hospital.visits) SELECT SUM(a.cost) FROM a WHERE a.x <> 'P000042'",
        "duplicate_column_name",
    ),
    # a bare table alias is the whole row, identifiers and all
    (
        "SELECT district, COUNT(*) AS n FROM hospital.visits v WHERE CAST(v AS VARCHAR) LIKE '%P000042%' GROUP BY district",
        "construct_not_allowed",
    ),
    (
        "SELECT t, COUNT(*) FROM (SELECT age FROM hospital.visits) t GROUP BY t",
        "construct_not_allowed",
    ),
    (
        "SELECT COUNT(*) AS n FROM hospital.visits v WHERE (CAST(v AS VARCHAR) LIKE '%P000042%' AND district IS TRUE)",
        "construct_not_allowed",
    ),
    # paging inside one released branch would run before suppression
    (
        "SELECT age, COUNT(*) AS n FROM hospital.visits WHERE age >= 99 GROUP BY age ORDER BY age DESC LIMIT 1 UNION ALL SELECT 0 AS age, COUNT(*) AS n FROM insurance.claims",
        "order_in_branch",
    ),
    ("SELECT COUNT(*) FROM hospital.visits WHERE age " + "+ 1 " * 150 + "> 1", "too_complex"),
    ("SELECT COUNT(*) FROM hospital.visits WHERE age IN ()", "empty_in_list"),
    ("SELECT COUNT(*) FROM hospital.visits WHERE district = '\u0000'", "literal_not_allowed"),
    (
        "SELECT COUNT(*) AS n FROM hospital.visits WHERE (age = 104 AND district IS TRUE)",
        "condition_not_boolean",
    ),
    # backtracking LIKE, long literals and string amplification are timing channels
    (
        "SELECT COUNT(*) AS n FROM hospital.visits WHERE CASE WHEN age = 104 THEN 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' ELSE 'x' END LIKE '%_a%_a%_a%_a%_a%_a%_a%_a%_a%_a%_a%_a%_a%_a%b'",
        "like_pattern_too_complex",
    ),
    (
        "SELECT COUNT(*) FROM hospital.visits WHERE district LIKE district",
        "like_pattern_not_literal",
    ),
    (
        "SELECT COUNT(*) FROM hospital.visits WHERE district = '" + "a" * 300 + "'",
        "literal_too_long",
    ),
    (
        "SELECT COUNT(*) FROM (SELECT CONCAT("
        + ", ".join(["district"] * 17)
        + ") AS s, patient_id FROM hospital.visits) t",
        "too_many_concatenations",
    ),
    # a CASE computed in a subquery and then counted is conditional aggregation in disguise
    (
        "SELECT COUNT(DISTINCT t.x) AS n FROM (SELECT CASE WHEN age = 104 AND diagnosis = 'C34' THEN 'y' END AS x, patient_id FROM hospital.visits) t",
        "derived_column_in_aggregate",
    ),
    (
        "SELECT COUNT(t.x) AS n FROM (SELECT CASE WHEN age = 104 AND district = 'Lianjiang' THEN 1 END AS x FROM hospital.visits) t",
        "derived_column_in_aggregate",
    ),
    (
        "WITH t AS (SELECT CASE WHEN diagnosis = 'Q87' AND age < 5 THEN 1 END AS x FROM hospital.visits) SELECT COUNT(x) AS n FROM t",
        "derived_column_in_aggregate",
    ),
    (
        "SELECT COUNT(DISTINCT t.x) AS n FROM (SELECT CASE WHEN age = 104 THEN visit_date END AS x FROM hospital.visits) t",
        "derived_column_in_aggregate",
    ),
    (
        "SELECT district, COUNT(t.x) AS n FROM (SELECT district, CASE WHEN age >= 100 THEN 1 END AS x FROM hospital.visits) t GROUP BY district",
        "derived_column_in_aggregate",
    ),
    (
        "WITH a AS (SELECT CASE WHEN age = 104 THEN 1 END AS x FROM hospital.visits), b AS (SELECT x FROM a) SELECT COUNT(x) AS n FROM b",
        "derived_column_in_aggregate",
    ),
    # distinct values of a column count a value that one person alone holds
    (
        "SELECT COUNT(DISTINCT diagnosis) AS d FROM hospital.visits WHERE (age = 104 AND diagnosis = 'C34') OR diagnosis = 'I10'",
        "dimension_in_aggregate",
    ),
    (
        "SELECT COUNT(DISTINCT district) AS d FROM hospital.visits WHERE (age = 104 AND district = 'Lianjiang') OR district = 'Gulou'",
        "dimension_in_aggregate",
    ),
    ("SELECT COUNT(DISTINCT facility_code) AS f FROM hospital.visits", "join_key_in_aggregate"),
    (
        "SELECT COUNT(DISTINCT t.d) AS n FROM (SELECT diagnosis AS d, patient_id FROM hospital.visits WHERE age = 104 OR diagnosis = 'I10') t WHERE t.d IN ('C34', 'I10')",
        "dimension_in_aggregate",
    ),
    # a UNION inside a subquery lets one asset's patients pad another's small group
    (
        "SELECT m, SUM(x) AS s, COUNT(*) AS n FROM (SELECT date_trunc('month', visit_date) AS m, cost AS x FROM hospital.visits WHERE age = 104 UNION ALL SELECT date_trunc('month', claim_month) AS m, paid_amount AS x FROM insurance.claims WHERE status = 'rejected') t GROUP BY m HAVING SUM(x) > 0 ORDER BY m",
        "set_operation_in_subquery",
    ),
    (
        "SELECT d, COUNT(*) AS n FROM (SELECT diagnosis AS d FROM hospital.visits WHERE age = 104 UNION ALL SELECT 'C34' AS d FROM insurance.claims) t GROUP BY d",
        "set_operation_in_subquery",
    ),
    # a CTE name reused inside another hides which assets are read
    (
        "WITH a AS (WITH a AS (SELECT patient_id FROM insurance.claims) SELECT patient_id FROM hospital.visits) SELECT COUNT(*) AS n FROM hospital.visits v JOIN a ON v.patient_id = a.patient_id",
        "cte_name_reused",
    ),
    (
        "WITH a AS (WITH a AS (SELECT patient_id FROM insurance.claims) SELECT 1 AS one FROM hospital.visits) SELECT COUNT(*) AS n FROM a",
        "cte_name_reused",
    ),
    # conditions must be BOOLEAN and comparisons must not cast data
    ("SELECT COUNT(*) FROM hospital.visits WHERE district", "condition_not_boolean"),
    (
        "SELECT COUNT(*) FROM hospital.visits WHERE age = 104 AND visit_date",
        "condition_not_boolean",
    ),
    ("SELECT COUNT(*) FROM hospital.visits WHERE visit_date = 1", "implicit_cast"),
    ("SELECT COUNT(*) FROM hospital.visits WHERE sex = TRUE", "implicit_cast"),
    (
        "SELECT COUNT(*) FROM hospital.visits WHERE age > CAST(0 AS DECIMAL(38,36))",
        "cast_type_not_allowed",
    ),
    (
        "SELECT COUNT(*) FROM hospital.visits WHERE SUBSTRING(district, age, 2) = 'a'",
        "function_argument_not_allowed",
    ),
    (
        "SELECT COUNT(*) FROM hospital.visits WHERE ROUND(age, 1000000) = 1",
        "function_argument_not_allowed",
    ),
    (
        "SELECT district, COUNT(*) FROM hospital.visits GROUP BY district EXCEPT SELECT plan, COUNT(*) FROM insurance.claims GROUP BY plan",
        "construct_not_allowed",
    ),
    (
        "SELECT district, COUNT(*) FROM hospital.visits GROUP BY district INTERSECT SELECT plan, COUNT(*) FROM insurance.claims GROUP BY plan",
        "construct_not_allowed",
    ),
    # DuckDB extensions to SQL
    ("SELECT district, COUNT(*) FROM hospital.visits GROUP BY ALL", "construct_not_allowed"),
    (
        "SELECT district, COUNT(*) FROM hospital.visits GROUP BY ROLLUP (district)",
        "construct_not_allowed",
    ),
    ("SELECT COUNT(*) FROM hospital.visits USING SAMPLE 10", "construct_not_allowed"),
    ("SELECT COUNT(*) FROM hospital.visits TABLESAMPLE (5 ROWS)", "construct_not_allowed"),
    ("SELECT COUNT(*) FROM hospital.visits QUALIFY true", "construct_not_allowed"),
    ("SELECT COLUMNS('.*') FROM hospital.visits", "construct_not_allowed"),
    (
        "SELECT COUNT(*) FROM hospital.visits PIVOT (SUM(cost) FOR district IN ('Gulou'))",
        "construct_not_allowed",
    ),
    ("SELECT COUNT(*), [1, 2] FROM hospital.visits", "construct_not_allowed"),
    ("SELECT COUNT(*), {'a': 1} FROM hospital.visits", "construct_not_allowed"),
    ("SELECT COUNT(*) FROM hospital.visits WHERE age = $1", "construct_not_allowed"),
    ("SELECT COUNT(*) FROM hospital.visits WHERE age = getvariable('x')", "construct_not_allowed"),
    (
        "SELECT COUNT(*) FROM hospital.visits WHERE visit_date > now() - INTERVAL 1 DAY",
        "construct_not_allowed",
    ),
    ("SELECT COUNT(*) AS veil_units FROM hospital.visits", "reserved_name"),
    ("SELECT COUNT(*) FROM hospital.visits LIMIT (SELECT 1)", "limit_not_literal"),
    ("SELECT COUNT(*) FROM nope.nothing", "unknown_table"),
    ("SELECT COUNT(nope) FROM hospital.visits", "unknown_column"),
    ("SELEC COUNT(*) FROM hospital.visits", "syntax"),
    ("", "empty_query"),
    (
        "SELECT COUNT(*) FROM hospital.visits WHERE " + "(" * 3000 + "age > 1" + ")" * 3000,
        "too_complex",
    ),
]


def _rules(body: dict) -> set[str]:
    return {v["rule"] for v in body["error"].get("violations", [])}


@pytest.mark.parametrize("sql,rule", REJECTED, ids=[f"{i:03d}" for i in range(len(REJECTED))])
def test_attack_is_rejected(demo, sql: str, rule: str) -> None:
    response = demo.query(sql) if sql else demo.query(" ")
    body = response.json()
    assert response.status_code == 422, body
    assert body["error"]["code"] == "QUERY_REJECTED"
    assert rule in _rules(body), body
    for secret in SECRETS:
        assert secret not in response.text


SUPPRESSED = [
    "SELECT COUNT(*) AS n, SUM(cost) AS total FROM hospital.visits WHERE age = 104",
    "SELECT COUNT(*) AS n, AVG(cost) AS mean FROM hospital.visits WHERE age >= 100",
    "SELECT COUNT(*) AS n FROM hospital.visits WHERE postcode = '350999'",
    "SELECT SUM(cost) AS total FROM hospital.visits WHERE diagnosis = 'Q87'",
    "SELECT COUNT(*) AS n FROM hospital.visits WHERE district = 'Lianjiang' AND diagnosis = 'C34' "
    "AND age > 100",
    # a join repeats the victim's rows 3 x 3 times, but still counts as one unit
    "SELECT COUNT(*) AS n, SUM(v.cost) AS total FROM hospital.visits v "
    "JOIN insurance.claims c ON v.patient_id = c.patient_id WHERE v.age = 104",
    "SELECT COUNT(*) AS n FROM hospital.visits WHERE TRY_CAST(postcode AS INTEGER) = 350999",
    "SELECT COUNT(*) AS n FROM hospital.visits WHERE CAST(postcode AS INTEGER) = 350999",
    "SELECT COUNT(*) AS n FROM hospital.visits WHERE postcode LIKE '35099%'",
    "SELECT COUNT(*) AS n FROM hospital.visits WHERE age > 103 UNION ALL "
    "SELECT COUNT(*) AS n FROM hospital.visits WHERE age > 102",
]


@pytest.mark.parametrize("sql", SUPPRESSED)
def test_small_groups_are_suppressed(demo, sql: str) -> None:
    response = demo.query(sql)
    body = response.json()
    assert response.status_code == 200, body
    assert body["rows"] == []
    assert body["suppressed_rows"] == 0  # counting dropped groups would itself answer
    for secret in SECRETS:
        assert secret not in response.text


def test_rare_group_never_appears_in_a_group_by(demo) -> None:
    body = demo.query(
        "SELECT diagnosis, age, COUNT(*) AS n, SUM(cost) AS total FROM hospital.visits "
        "GROUP BY diagnosis, age"
    ).json()
    released = {(row[0], row[1]) for row in body["rows"]}
    assert ("Q87", 4) not in released and ("C34", 104) not in released
    assert body["suppressed_rows"] == 0
    assert body["rows"], "honest groups are still released"


def test_measures_are_clamped_to_bounds(demo) -> None:
    body = demo.query(
        "SELECT COUNT(DISTINCT patient_id) AS units, SUM(cost) AS total FROM hospital.visits "
        "WHERE district = 'Lianjiang'"
    ).json()
    units, total = body["rows"][0]
    assert total <= units * 20_000 * 30


def test_data_dependent_arithmetic_does_not_error(demo) -> None:
    # Division by zero and overflow on one victim's row must not turn into an error signal.
    for sql in (
        "SELECT COUNT(*) AS n FROM hospital.visits WHERE 1 / (age - 104) > 0",
        "SELECT COUNT(*) AS n FROM hospital.visits WHERE age * 9223372036854775807 > 0",
        "SELECT COUNT(*) AS n FROM hospital.visits WHERE (age - 104) // 0 IS NULL",
        "SELECT COUNT(*) AS n FROM hospital.visits WHERE -(age * 2147483647) < 0",
    ):
        response = demo.query(sql)
        assert response.status_code == 200, (sql, response.json())


# Pairs that differ only in a condition on the victim: every answer must be the same, or the
# difference is a one-bit channel (error, suppression count, withheld rows, HTTP status).
ORACLE_PAIRS = [
    # runtime errors that would depend on data (implicit casts, overflows)
    (
        "SELECT COUNT(*) AS n FROM hospital.visits WHERE age = 104 AND district = 'Lianjiang' AND sex",
        "SELECT COUNT(*) AS n FROM hospital.visits WHERE age = 104 AND district = 'Gulou' AND sex",
    ),
    (
        "SELECT COUNT(*) AS n FROM hospital.visits WHERE age = 104 AND age = 'x'",
        "SELECT COUNT(*) AS n FROM hospital.visits WHERE age = 200 AND age = 'x'",
    ),
    (
        "SELECT COUNT(*) AS n FROM hospital.visits WHERE postcode = '350999' AND visit_date = 'x'",
        "SELECT COUNT(*) AS n FROM hospital.visits WHERE postcode = '350998' AND visit_date = 'x'",
    ),
    (
        "SELECT COUNT(*) AS n FROM hospital.visits WHERE diagnosis = 'Q87' AND age > 5 AND (FALSE = visit_date)",
        "SELECT COUNT(*) AS n FROM hospital.visits WHERE diagnosis = 'Q87' AND age > 50 AND (FALSE = visit_date)",
    ),
    (
        "SELECT COUNT(*) AS n FROM hospital.visits WHERE age > CAST(0 AS DECIMAL(38,36))",
        "SELECT COUNT(*) AS n FROM hospital.visits WHERE age > CAST(0 AS DECIMAL(38,35))",
    ),
    (
        "SELECT COUNT(*) AS n FROM hospital.visits WHERE ABS(TRY_CAST(CASE WHEN age = 104 THEN -2147483648 ELSE 0 END AS INTEGER)) > 0",
        "SELECT COUNT(*) AS n FROM hospital.visits WHERE ABS(TRY_CAST(CASE WHEN age = 200 THEN -2147483648 ELSE 0 END AS INTEGER)) > 0",
    ),
    (
        "SELECT age, COUNT(*) AS n FROM hospital.visits WHERE age >= 100 GROUP BY age HAVING ABS(TRY_CAST(CASE WHEN SUM(cost) > 56000 THEN -2147483648 ELSE 0 END AS INTEGER)) > 0",
        "SELECT age, COUNT(*) AS n FROM hospital.visits WHERE age >= 100 GROUP BY age HAVING ABS(TRY_CAST(CASE WHEN SUM(cost) > 57000 THEN -2147483648 ELSE 0 END AS INTEGER)) > 0",
    ),
    (
        "SELECT COUNT(*) AS n FROM hospital.visits WHERE SUBSTRING(district, TRY_CAST(CASE WHEN age = 104 THEN 9223372036854775807 ELSE 1 END AS BIGINT), 2) = 'a'",
        "SELECT COUNT(*) AS n FROM hospital.visits WHERE SUBSTRING(district, TRY_CAST(CASE WHEN age = 200 THEN 9223372036854775807 ELSE 1 END AS BIGINT), 2) = 'a'",
    ),
    (
        "SELECT COUNT(*) AS n FROM hospital.visits WHERE age = 104 AND CASE district WHEN 1 THEN 1 END = 1",
        "SELECT COUNT(*) AS n FROM hospital.visits WHERE age = 200 AND CASE district WHEN 1 THEN 1 END = 1",
    ),
    (
        "SELECT COUNT(*) AS n FROM hospital.visits WHERE age = 104 AND district = -sex",
        "SELECT COUNT(*) AS n FROM hospital.visits WHERE age = 200 AND district = -sex",
    ),
    (
        "SELECT age, COUNT(*) AS n, SUM(cost) * 1e305 AS x FROM hospital.visits WHERE age < 104 OR age = 104 GROUP BY age",
        "SELECT age, COUNT(*) AS n, SUM(cost) * 1e305 AS x FROM hospital.visits WHERE age < 104 OR age = 200 GROUP BY age",
    ),
    (
        "SELECT COUNT(*) AS n FROM hospital.visits WHERE CASE WHEN age = 104 THEN 10.5 ELSE 0.5 END = 0.1234567890123456789012345678901234567",
        "SELECT COUNT(*) AS n FROM hospital.visits WHERE CASE WHEN age = 200 THEN 10.5 ELSE 0.5 END = 0.1234567890123456789012345678901234567",
    ),
    (
        "SELECT COUNT(*) AS n FROM hospital.visits WHERE CASE WHEN age = 104 THEN 170141183460469231731687303715884105728 ELSE age END > 0 OR age >= 0",
        "SELECT COUNT(*) AS n FROM hospital.visits WHERE CASE WHEN age = 200 THEN 170141183460469231731687303715884105728 ELSE age END > 0 OR age >= 0",
    ),
    (
        "SELECT COUNT(*) AS n FROM hospital.visits WHERE (age = 104 AND CAST('5000000-01-01' AS DATE) > date_trunc('month', visit_date))",
        "SELECT COUNT(*) AS n FROM hospital.visits WHERE (age = 200 AND CAST('5000000-01-01' AS DATE) > date_trunc('month', visit_date))",
    ),
    (
        "SELECT COUNT(*) AS n FROM hospital.visits WHERE date_trunc('month', CAST(CASE WHEN age = 104 THEN '5000000-01-01' ELSE '2024-01-01' END AS DATE)) IS NULL",
        "SELECT COUNT(*) AS n FROM hospital.visits WHERE date_trunc('month', CAST(CASE WHEN age = 200 THEN '5000000-01-01' ELSE '2024-01-01' END AS DATE)) IS NULL",
    ),
    (
        "SELECT COUNT(*) AS n FROM hospital.visits WHERE date_trunc('month', CAST(CASE WHEN age = 104 THEN '290309-12-22 (BC)' ELSE '2024-01-01' END AS DATE)) IS NULL",
        "SELECT COUNT(*) AS n FROM hospital.visits WHERE date_trunc('month', CAST(CASE WHEN age = 200 THEN '290309-12-22 (BC)' ELSE '2024-01-01' END AS DATE)) IS NULL",
    ),
    (
        "SELECT age, COUNT(*) AS n FROM hospital.visits WHERE age >= 100 GROUP BY age HAVING date_trunc('year', CAST(CASE WHEN SUM(cost) > 56000 THEN '290309-12-22 (BC)' ELSE '2024-01-01' END AS DATE)) IS NULL",
        "SELECT age, COUNT(*) AS n FROM hospital.visits WHERE age >= 100 GROUP BY age HAVING date_trunc('year', CAST(CASE WHEN SUM(cost) > 57000 THEN '290309-12-22 (BC)' ELSE '2024-01-01' END AS DATE)) IS NULL",
    ),
    # the same small group repeated, or a person's rows multiplied by a join
    (
        " UNION ALL ".join(
            [
                "SELECT age, COUNT(*) AS n FROM hospital.visits WHERE age = 104 AND district = 'Lianjiang' GROUP BY age"
            ]
            * 10
        ),
        " UNION ALL ".join(
            [
                "SELECT age, COUNT(*) AS n FROM hospital.visits WHERE age = 104 AND district = 'Gulou' GROUP BY age"
            ]
            * 10
        ),
    ),
    (
        "SELECT c.claim_month, c.plan, c.status, COUNT(*) AS n FROM hospital.visits v JOIN insurance.claims c ON v.facility_code = c.facility_code WHERE v.age = 104 AND v.diagnosis = 'C34' GROUP BY c.claim_month, c.plan, c.status",
        "SELECT c.claim_month, c.plan, c.status, COUNT(*) AS n FROM hospital.visits v JOIN insurance.claims c ON v.facility_code = c.facility_code WHERE v.age = 104 AND v.diagnosis = 'I10' GROUP BY c.claim_month, c.plan, c.status",
    ),
    # -0.0 and 0.0 share a group whose label shows the sign of its first row
    (
        "SELECT CASE WHEN age = 104 THEN -0.0 ELSE 0.0 END AS k, COUNT(*) AS n FROM hospital.visits WHERE district = 'Lianjiang' AND visit_date >= '2024-03-12' GROUP BY k",
        "SELECT CASE WHEN age = 103 THEN -0.0 ELSE 0.0 END AS k, COUNT(*) AS n FROM hospital.visits WHERE district = 'Lianjiang' AND visit_date >= '2024-03-12' GROUP BY k",
    ),
    (
        "SELECT CAST(k AS VARCHAR) AS s, COUNT(*) AS n FROM (SELECT CASE WHEN age = 104 THEN -0.0 ELSE 0.0 END AS k FROM hospital.visits WHERE district = 'Lianjiang' AND visit_date >= '2024-03-12') t GROUP BY k",
        "SELECT CAST(k AS VARCHAR) AS s, COUNT(*) AS n FROM (SELECT CASE WHEN age = 103 THEN -0.0 ELSE 0.0 END AS k FROM hospital.visits WHERE district = 'Lianjiang' AND visit_date >= '2024-03-12') t GROUP BY k",
    ),
    (
        "SELECT CAST(ROUND(CASE WHEN age = 104 THEN -0.4 ELSE 0.4 END, 0) AS VARCHAR) AS s, COUNT(*) AS n FROM hospital.visits WHERE district = 'Lianjiang' AND visit_date >= '2024-03-12' GROUP BY ROUND(CASE WHEN age = 104 THEN -0.4 ELSE 0.4 END, 0)",
        "SELECT CAST(ROUND(CASE WHEN age = 103 THEN -0.4 ELSE 0.4 END, 0) AS VARCHAR) AS s, COUNT(*) AS n FROM hospital.visits WHERE district = 'Lianjiang' AND visit_date >= '2024-03-12' GROUP BY ROUND(CASE WHEN age = 103 THEN -0.4 ELSE 0.4 END, 0)",
    ),
    (
        "SELECT CASE WHEN 1 / k > 0 THEN 'pos' ELSE 'neg' END AS s, COUNT(*) AS n FROM (SELECT CASE WHEN age = 104 THEN -0.0 ELSE 0.0 END AS k FROM hospital.visits WHERE district = 'Lianjiang' AND visit_date >= '2024-03-12') t GROUP BY k",
        "SELECT CASE WHEN 1 / k > 0 THEN 'pos' ELSE 'neg' END AS s, COUNT(*) AS n FROM (SELECT CASE WHEN age = 103 THEN -0.0 ELSE 0.0 END AS k FROM hospital.visits WHERE district = 'Lianjiang' AND visit_date >= '2024-03-12') t GROUP BY k",
    ),
    # a cast only compared is left as it is: comparisons cannot tell -0.0 from 0.0
    (
        "SELECT district, COUNT(*) AS n FROM hospital.visits WHERE CAST(CASE WHEN age = 104 THEN '-0' ELSE '0' END AS DOUBLE) >= 0 GROUP BY district",
        "SELECT district, COUNT(*) AS n FROM hospital.visits WHERE CAST(CASE WHEN age = 103 THEN '-0' ELSE '0' END AS DOUBLE) >= 0 GROUP BY district",
    ),
    (
        "SELECT district, COUNT(*) AS n FROM hospital.visits WHERE 1 / CAST(CASE WHEN age = 104 THEN '-0' ELSE '0' END AS DOUBLE) > 0 GROUP BY district",
        "SELECT district, COUNT(*) AS n FROM hospital.visits WHERE 1 / CAST(CASE WHEN age = 103 THEN '-0' ELSE '0' END AS DOUBLE) > 0 GROUP BY district",
    ),
    (
        "SELECT CAST(k AS VARCHAR) AS s, COUNT(*) AS n FROM (SELECT CASE WHEN age = 104 THEN -(1e308 * 10 - 1e308 * 10) ELSE (1e308 * 10 - 1e308 * 10) END AS k FROM hospital.visits WHERE district = 'Lianjiang' AND visit_date >= '2024-03-12') t GROUP BY k",
        "SELECT CAST(k AS VARCHAR) AS s, COUNT(*) AS n FROM (SELECT CASE WHEN age = 103 THEN -(1e308 * 10 - 1e308 * 10) ELSE (1e308 * 10 - 1e308 * 10) END AS k FROM hospital.visits WHERE district = 'Lianjiang' AND visit_date >= '2024-03-12') t GROUP BY k",
    ),
    # the suppression count and withheld rows
    (
        "SELECT age, COUNT(*) AS n FROM hospital.visits WHERE age = 104 GROUP BY age HAVING SUM(cost) > 56000",
        "SELECT age, COUNT(*) AS n FROM hospital.visits WHERE age = 104 GROUP BY age HAVING SUM(cost) > 57000",
    ),
    (
        "SELECT age, COUNT(*) AS n FROM hospital.visits WHERE age = 104 AND diagnosis = 'C34' GROUP BY age",
        "SELECT age, COUNT(*) AS n FROM hospital.visits WHERE age = 104 AND diagnosis = 'I10' GROUP BY age",
    ),
    (
        "SELECT age, COUNT(*) AS n FROM hospital.visits WHERE (age = 104 AND diagnosis = 'C34') OR age = 50 GROUP BY age",
        "SELECT age, COUNT(*) AS n FROM hospital.visits WHERE (age = 104 AND diagnosis = 'I10') OR age = 50 GROUP BY age",
    ),
    (
        "SELECT diagnosis, COUNT(*) AS n FROM hospital.visits WHERE diagnosis IN ('Q87', 'I10') AND age < 9 GROUP BY diagnosis",
        "SELECT diagnosis, COUNT(*) AS n FROM hospital.visits WHERE diagnosis IN ('Q87', 'I10') AND age < 4 GROUP BY diagnosis",
    ),
]


def _comparable(response) -> tuple[int, object]:
    body = response.json()
    for volatile in ("query_id", "receipt"):
        body.pop(volatile, None)
    return response.status_code, body


@pytest.mark.parametrize(
    "victim,control", ORACLE_PAIRS, ids=[f"{i:02d}" for i in range(len(ORACLE_PAIRS))]
)
def test_no_one_bit_channel(demo, victim: str, control: str) -> None:
    first, second = demo.query(victim), demo.query(control)
    assert _comparable(first) == _comparable(second), (first.json(), second.json())
    assert first.status_code in (200, 422)


def test_overflowing_values_stay_finite(demo) -> None:
    import math

    body = demo.query(
        "SELECT sex, COUNT(*) AS n, SUM(cost) * 1e305 AS x FROM hospital.visits GROUP BY sex"
    ).json()
    assert body["rows"] and all(row[2] is None or math.isfinite(row[2]) for row in body["rows"])

"""Errors a developer meets, pinned over HTTP against the demo: each names what went wrong in
the developer's own words, and where, and none echoes data or depends on whether a row
exists (each shape has an attacker's variant beside it)."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import tempfile
from itertools import count
from pathlib import Path

import httpx
import pytest

from sandbox.demo import VICTIM_PATIENT_ID, VISITS_CSV, write_demo_assets
from tests.gateway.test_jobs import submit, wait
from tests.support import Server

serial = count()
# Parser class names a message once showed; none may reach a client.
INTERNAL_NAMES = ("In", "Subquery", "Anonymous", "Select", "Column", "Paren", "Tuple")


@pytest.fixture(scope="module")
def victim_name() -> str:
    """A name the demo data really holds (the planted victim's), for the attacker's variants."""
    with tempfile.TemporaryDirectory() as folder:
        write_demo_assets(Path(folder))
        with (Path(folder) / VISITS_CSV).open() as rows:
            return next(r["patient_name"] for r in csv.DictReader(rows)
                        if r["patient_id"] == VICTIM_PATIENT_ID)  # fmt: skip


def _refused(response: httpx.Response, status: int, code: str) -> dict:
    body = response.json()
    assert response.status_code == status, body
    assert body["error"]["code"] == code
    return body["error"]


def _absent(name: str) -> str:
    """A name of the same length that the data cannot hold."""
    return "Q" * len(name)


def test_an_unknown_column_is_named_as_written(demo) -> None:
    sql = "SELECT Distrct, COUNT(*) AS n FROM hospital.visits GROUP BY Distrct"
    error = _refused(demo.query(sql), 422, "QUERY_REJECTED")
    assert error["violations"] == [{"rule": "unknown_column", "column": "Distrct"}]
    assert '"Distrct" does not exist in the tables the query reads' in error["message"]
    # Qualified by an alias, it is named with it; two tables holding it make it ambiguous.
    sql = "SELECT v.distrct, COUNT(*) AS n FROM hospital.visits v GROUP BY 1"
    error = _refused(demo.query(sql), 422, "QUERY_REJECTED")
    assert error["violations"] == [{"rule": "unknown_column", "column": "v.distrct"}]
    sql = ("SELECT COUNT(*) AS n FROM hospital.visits v JOIN insurance.claims c "
           "ON v.patient_id = c.patient_id WHERE patient_id = 'x'")  # fmt: skip
    error = _refused(demo.query(sql), 422, "QUERY_REJECTED")
    assert error["violations"] == [{"rule": "ambiguous_column", "column": "patient_id"}]


def test_an_unknown_table_is_named_and_said_not_to_exist(demo) -> None:
    error = _refused(demo.query("SELECT COUNT(*) AS n FROM hospital.vists"), 422, "QUERY_REJECTED")
    assert error["violations"] == [{"rule": "unknown_table", "table": "hospital.vists"}]
    assert '"hospital.vists" does not exist in the catalogue' in error["message"]
    # SQL names are case-insensitive: a table written in capitals is the same table.
    assert demo.query("SELECT COUNT(*) AS n FROM Hospital.VISITS").status_code == 200


def test_a_table_not_granted_is_a_denial_naming_it(demo) -> None:
    error = _refused(demo.query("SELECT COUNT(*) AS n FROM hospital.visits", who="fintech"),
                     403, "POLICY_DENIED")  # fmt: skip
    assert error["violations"] == [{"rule": "asset_not_granted", "table": "hospital.visits"}]
    assert '"hospital.visits" is not in a grant of yours' in error["message"]


def test_a_column_outside_a_narrowed_grant_is_named(demo) -> None:
    key = _narrowed_developer(demo, {"hospital.visits": ["age", "patient_id"]})

    def ask(sql: str) -> httpx.Response:
        with httpx.Client(base_url=demo.url, headers={"Authorization": f"Bearer {key}"}) as c:
            return c.post("/v1/queries", json={"sql": sql}, timeout=60)

    assert ask("SELECT age, COUNT(*) AS n FROM hospital.visits GROUP BY age").status_code == 200
    sql = "SELECT COUNT(*) AS n FROM hospital.visits WHERE district = '{}'"
    rare, common = ask(sql.format("Lianjiang")), ask(sql.format("Gulou"))
    error = _refused(rare, 403, "POLICY_DENIED")
    assert error["violations"] == [
        {"rule": "column_not_granted", "table": "hospital.visits", "column": "district"}
    ]
    # The victim's district or any other: the same refusal, word for word.
    assert rare.json() == common.json()
    # A wider grant that is not yet in force widens nothing, and the column is still named.
    with httpx.Client(base_url=demo.url, headers={"Authorization": f"Bearer {key}"}) as client:
        later = client.post("/v1/grants", json={
            "assets": ["hospital.visits"], "purpose": "public_welfare", "scenario": "next year",
            "methods": ["sql"], "valid_from": "2029-06-01T00:00:00Z",
            "valid_until": "2030-01-01T00:00:00Z"}, timeout=60)  # fmt: skip
    assert later.status_code == 201, later.json()
    demo.approve(later.json()["id"], "city-hospital", "supervisor")
    error = _refused(ask(sql.format("Gulou")), 403, "POLICY_DENIED")
    assert {"rule": "column_not_granted", "table": "hospital.visits", "column": "district"} in (
        error["violations"]
    )


def test_a_parse_error_gives_the_line_and_column(demo) -> None:
    sql = "SELECT district,\n       COUNT(*) AS n\nFROM hospital.visits\nWHERE age > )\n"
    error = _refused(demo.query(sql), 422, "QUERY_REJECTED")
    assert error["violations"] == [{"rule": "syntax", "line": 4, "col": 13}]
    assert "line 4, column 13" in error["message"]


def test_constructs_outside_the_allow_list_are_named_in_sql_words(demo) -> None:
    sql = "SELECT COUNT(*) AS n FROM hospital.visits WHERE age IN (SELECT age FROM hospital.visits)"
    error = _refused(demo.query(sql), 422, "QUERY_REJECTED")
    assert error["violations"] == [
        {"rule": "construct_not_allowed", "name": "a subquery inside IN", "line": 1, "col": 49}
    ]
    sql = "SELECT COUNT(*) AS n FROM hospital.visits WHERE Foo(age) > 1"
    error = _refused(demo.query(sql), 422, "QUERY_REJECTED")
    assert [v.get("name") for v in error["violations"]] == ["function foo"]
    for message in (error["message"], json.dumps(error)):
        assert not any(re.search(rf"\b{name}\b", message) for name in INTERNAL_NAMES), message


def test_no_query_error_echoes_data_or_depends_on_whether_a_row_exists(
    demo, victim_name: str
) -> None:
    """Each refusal for a value the data holds and for one it cannot: the same body (a name
    written by the developer comes back as written, and only that differs)."""
    templates = [
        "SELECT COUNT(*) AS n FROM hospital.visits WHERE '{}' = patient_name",
        'SELECT COUNT(*) AS n FROM hospital.visits WHERE "{}" = 1',
        "SELECT COUNT(*) AS n FROM hospital.visits WHERE patient_name = '{}' AND (",
        "SELECT COUNT(*) AS n FROM hospital.visits WHERE age IN "
        "(SELECT age FROM hospital.visits WHERE patient_name = '{}')",
        'SELECT COUNT(*) AS n FROM hospital."{}"',
    ]
    for template in templates:
        held = demo.query(template.format(victim_name))
        absent = demo.query(template.format(_absent(victim_name)))
        assert held.status_code == absent.status_code == 422, template
        echoed = template.count('"{}"')
        assert held.text.count(victim_name) == (2 if echoed else 0), held.text
        assert held.text.replace(victim_name, _absent(victim_name)) == absent.text, template
    for patient in (VICTIM_PATIENT_ID, "P999999"):
        sql = f"SELECT COUNT(*) AS n FROM hospital.visits WHERE patient_id = '{patient}'"
        assert patient not in demo.query(sql).text


def test_a_disallowed_import_is_refused_at_submission_and_nothing_runs(demo) -> None:
    code = "import math\nimport os\nos.system('id')\n"
    with demo.client("supervisor") as supervisor:
        before = supervisor.get("/v1/ledger/checkpoint").json()["tree_size"]
    error = _refused(submit(demo, code), 422, "JOB_REJECTED")
    assert error["violations"] == [{"rule": "import_not_allowed", "name": "os", "line": 2}]
    assert 'line 2: importing "os" is not allowed' in error["message"]
    # The refusal is recorded; no job was made, queued, run or charged.
    digest = hashlib.sha256(code.encode()).hexdigest()
    with demo.client("supervisor") as supervisor:
        items = supervisor.get("/v1/ledger/entries", params={"after": before - 1}).json()["items"]
    entries = [json.loads(item["data"]) for item in items]
    mine = [entry for entry in entries if entry.get("code_sha256") == digest]
    assert [(e["type"], e["outcome"], e["rules"]) for e in mine] == [
        ("job_submitted", "rejected", ["import_not_allowed"])
    ]
    with demo.client("analyst") as analyst:
        listed = analyst.get("/v1/jobs").json()["items"]
    assert digest not in {job["code_sha256"] for job in listed}


ESCAPES = {
    "from-import": ("from os import path", "import_not_allowed", "os", 1),
    "a star import": ("from math import *", "import_not_allowed", "math.*", 1),
    "__import__": ("x = 1\nm = __import__('os')", "name_not_allowed", "__import__", 2),
    "getattr walk": ("g = getattr(sql, '__globals__')", "name_not_allowed", "getattr", 1),
    "dunder walk": ("x = ().__class__.__bases__", "attribute_not_allowed", "__class__", 1),
    "frame walk": ("g = (x for x in [1])\nf = g.gi_frame", "attribute_not_allowed", "gi_frame", 2),
    "a hidden argument": ("def f(_g):\n    return _g", "name_not_allowed", "_g", 1),
}


@pytest.mark.parametrize(("code", "rule", "name", "line"), ESCAPES.values(), ids=ESCAPES.keys())
def test_escape_attempts_are_refused_at_submission_by_name_and_line(
    demo, code: str, rule: str, name: str, line: int
) -> None:
    error = _refused(submit(demo, code), 422, "JOB_REJECTED")
    assert {"rule": rule, "name": name, "line": line} in error["violations"], error


def test_a_syntax_error_in_a_job_gives_its_line_and_column(demo) -> None:
    error = _refused(submit(demo, "total = 0\nfor x in [1, 2]\n    total += x\n"), 422,
                     "JOB_REJECTED")  # fmt: skip
    assert error["violations"] == [{"rule": "syntax", "line": 2, "col": 16}]


def test_a_runtime_error_names_its_kind_and_line(demo) -> None:
    code = (
        "rows = sql('SELECT COUNT(*) AS n FROM hospital.visits')['rows']\nshare = rows[0][0] / 0\n"
    )
    job = wait(demo, submit(demo, code).json()["id"])
    assert job["status"] == "failed"
    assert job["error"] == {"code": "JOB_FAILED", "violations": [], "kind": "ZeroDivisionError",
                            "line": 2}  # fmt: skip


def test_a_jobs_error_is_the_same_whether_a_person_exists(demo) -> None:
    """The planted 104-year-old exists and nobody is 105: a job that fails when its answer is
    empty fails alike for both, since it only ever holds released rows."""
    code = "rows = sql('SELECT COUNT(*) AS n FROM hospital.visits WHERE age = {}')['rows']\nn = rows[0]\n"
    errors = [_ended(demo, code.format(age))["error"] for age in (104, 105)]
    assert errors[0] == errors[1] == {"code": "JOB_FAILED", "violations": [], "kind": "IndexError",
                                      "line": 2}  # fmt: skip


def _ended(server: Server, code: str) -> dict:
    submitted = submit(server, code)
    assert submitted.status_code == 202, submitted.json()
    return wait(server, submitted.json()["id"])


def _narrowed_developer(server: Server, columns: dict[str, list[str]]) -> str:
    """A new developer whose one grant covers only `columns`; its API key."""
    with server.client("admin") as admin:
        made = admin.post("/v1/principals", json={"id": f"narrow-{next(serial)}",
                                                  "roles": ["developer"], "org": "Narrow Lab"})  # fmt: skip
    assert made.status_code == 201, made.json()
    key = made.json()["api_key"]
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}) as client:
        asked = client.post("/v1/grants", json={
            "assets": sorted(columns), "purpose": "public_welfare", "scenario": "s",
            "methods": ["sql"], "valid_until": "2030-01-01T00:00:00Z", "columns": columns,
        }, timeout=60)  # fmt: skip
    assert asked.status_code == 201, asked.json()
    server.approve(asked.json()["id"], "city-hospital", "supervisor")
    return key

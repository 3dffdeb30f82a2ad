"""Differential privacy over HTTP: attacks that recovered one person now meet noise, repeats are
free, budgets are spent once and run out with a 429 that names the asset."""

from __future__ import annotations

import contextlib
import io
import json
import sqlite3
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.gateway.test_jobs import run, submit, wait
from tests.support import Server, start_server, stop_server

PEOPLE = {
    "id": "city.people",
    "title": "People",
    "provider": "city-hospital",
    "classification": "L3",
    "domain": "civil",
    "rights": {"holder": "city-hospital", "personal_data": True},
    "columns": [
        {"name": "person", "type": "VARCHAR", "role": "privacy_unit"},
        {"name": "age", "type": "INTEGER", "role": "dimension"},
        {"name": "district", "type": "VARCHAR", "role": "dimension",
         "domain": ["north", "south", "east", "west"]},
        {"name": "diagnosis", "type": "VARCHAR", "role": "dimension"},
        {"name": "income", "type": "INTEGER", "role": "measure", "bounds": [0, 200000]},
    ],
    "revenue_shares_bp": {"city-hospital": 10000},
}  # fmt: skip
DISTRICTS = ["north", "south", "east", "west"]
PERSONS = 3000
TARGET_INCOME = 150_000
PARTIES = ["city-hospital", "supervisor"]


def _people_csv() -> str:
    lines = ["person,age,district,diagnosis,income"]
    lines += [
        f"p{i},{20 + i % 60},{DISTRICTS[i % 4]},D{i % 5},{10_000 + (i * 37) % 90_000}"
        for i in range(PERSONS)
    ]
    lines.append(f"p_target,103,north,RARE,{TARGET_INCOME}")
    return "\n".join(lines) + "\n"


def _with_people(server: Server) -> Server:
    with server.client("city-hospital") as client:
        registered = client.post(
            "/v1/assets",
            data={"card": json.dumps(PEOPLE)},
            files={"file": ("people.csv", io.BytesIO(_people_csv().encode()), "text/csv")},
        )
        assert registered.status_code == 201, registered.json()
        again = client.post(
            "/v1/assets",
            data={"card": json.dumps(dict(PEOPLE, id="city.people_again"))},
            files={"file": ("people.csv", io.BytesIO(_people_csv().encode()), "text/csv")},
        )
        assert again.status_code == 201, again.json()
    for developer in ("analyst", "fintech"):
        server.grant(developer, ["city.people", "city.people_again"], PARTIES, ("sql", "job"))
    return server


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Budgets wide enough to repeat each attack many times and look at its error."""
    server = start_server(tmp_path_factory.mktemp("dp-wide") / "home")
    yield _with_people(server)
    stop_server(server)


@pytest.fixture
def shipped(tmp_path: Path) -> Iterator[Server]:
    """The shipped policy alone: ε = 1 per query, 10 per organisation per asset per month."""
    empty = tmp_path / "no-operator-modules"
    empty.mkdir()
    server = start_server(tmp_path / "home", env={"VEIL_POLICY_DIR": str(empty)})
    yield _with_people(server)
    stop_server(server)


HOLD_PEOPLE_JOBS = """package veil.authz

import rego.v1

manual_review contains "people" if {
\tinput.scope == "job:submit"
\tsome a in input.resource.assets
\ta.id == "city.people"
}
"""


@pytest.fixture
def holding(tmp_path: Path) -> Iterator[Server]:
    """The shipped budgets, and every job on city.people held for review."""
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "hold.rego").write_text(HOLD_PEOPLE_JOBS)
    # A held job keeps its slot to its latest end, well after it really ended: room for three.
    env = {"VEIL_POLICY_DIR": str(policies), "VEIL_JOB_TIMEOUT_S": "4", "VEIL_JOB_CPU_S": "2",
           "VEIL_JOB_GATE_TIMEOUT_S": "2", "VEIL_JOB_CONCURRENCY": "3",
           "VEIL_JOBS_IN_FLIGHT_PER_PRINCIPAL": "3"}  # fmt: skip
    server = start_server(tmp_path / "home", env=env)
    yield _with_people(server)
    stop_server(server)


BY_DISTRICT_JOB = """
answer = sql("SELECT district, COUNT(*) AS n, AVG(income) AS mean FROM city.people "
             "GROUP BY district")
publish("by_district", [["district", "label"], ["n", "count"], ["mean", "mean"]],
        answer["rows"])
"""


def test_a_jobs_questions_answer_under_dp_and_their_outputs_are_released(shipped: Server):
    job = run(shipped, BY_DISTRICT_JOB, grant_id=_people_grant(shipped))
    assert job["status"] == "succeeded", job
    table = job["outputs"]["by_district"]
    # Every district, none suppressed: values released under DP are post-processed freely.
    assert sorted(row[0] for row in table["rows"]) == sorted(DISTRICTS)
    assert _spent(shipped, "analyst") == pytest.approx(1.0)


def test_a_held_job_spends_the_same_whatever_it_asks(holding: Server) -> None:
    """Held for review, a job reserves its ε as it starts: none, one or three questions, its
    developer's budget moves by the same amount, and the questions leave no stored answer."""
    spends = []
    job_ids = []
    for asked in (0, 1, 3):
        code = (
            "".join(
                f'sql("SELECT COUNT(*) FROM city.people WHERE age > {i}")\n' for i in range(asked)
            )
            + 'publish("t", ["n"], [[1]])\n'
        )
        submitted = submit(holding, code, grant_id=_people_grant(holding))
        assert submitted.status_code == 202, submitted.json()
        job_ids.append(submitted.json()["id"])
        # Really ended, as its reviewers see, before the budget is read and the next starts.
        wait(holding, job_ids[-1], who="operator")
        spends.append(_spent(holding, "analyst"))
    assert spends == pytest.approx([4.0, 8.0, 10.0])  # four queries' worth, then what was left
    for job_id in job_ids:
        assert wait(holding, job_id, until={"review"})["status"] == "review"
    assert _spent(holding, "analyst") == pytest.approx(10.0)
    # A question the held job asked is new to its developer: not answered from a store.
    answer = holding.query("SELECT COUNT(*) FROM city.people WHERE age > 0")
    assert answer.status_code == 429  # the budget went to the envelopes, not to answers kept


def _value(server: Server, sql: str, who: str = "analyst") -> float:
    response = server.query(sql, who)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["privacy"]["mode"] == "dp"
    return body["rows"][0][-1]


def _spread(errors: list[float]) -> tuple[float, float]:
    return statistics.pstdev(errors), statistics.median(abs(e) for e in errors)


def test_the_complement_pair_meets_noise(wide: Server) -> None:
    errors = []
    for i in range(15):
        # `age >= -i` holds for everyone: each round is a new question with fresh noise.
        total = _value(wide, f"SELECT SUM(income) FROM city.people WHERE age >= -{i}")
        rest = _value(
            wide, f"SELECT SUM(income) FROM city.people WHERE NOT (age = 103) AND age >= -{i}"
        )
        errors.append(total - rest - TARGET_INCOME)
    spread, typical = _spread(errors)
    assert spread > 100_000 and typical > 20_000  # noise of scale 200000 on each answer


def test_the_union_in_one_request_meets_noise(wide: Server) -> None:
    errors = []
    for i in range(15):
        response = wide.query(
            f"SELECT 'all' AS part, SUM(income) AS s FROM city.people WHERE age >= -{i} "
            f"UNION ALL SELECT 'rest', SUM(income) FROM city.people "
            f"WHERE age <> 103 AND age >= -{i}"
        )
        assert response.status_code == 200, response.json()
        rows = dict(response.json()["rows"])
        errors.append(rows["all"] - rows["rest"] - TARGET_INCOME)
    spread, typical = _spread(errors)
    assert spread > 100_000 and typical > 20_000


def test_overlapping_filters_and_a_join_meet_noise(wide: Server) -> None:
    """Two ranges that overlap only in the target's age; and the pair again through a join of
    the asset with itself on the privacy unit, where each person's rows meet their own."""
    overlaps, joined = [], []
    for i in range(12):
        low = _value(wide, f"SELECT SUM(income) FROM city.people WHERE age >= 70 AND age >= -{i}")
        high = _value(wide, f"SELECT SUM(income) FROM city.people WHERE age <= 103 AND age >= -{i}")
        both = _value(wide, f"SELECT SUM(income) FROM city.people WHERE age >= -{i}")
        # Nobody is both >= 70 and <= 103 except those 70 to 79 and the target.
        middle = _value(
            wide, f"SELECT SUM(income) FROM city.people WHERE age BETWEEN 70 AND 79 AND age >= -{i}"
        )
        overlaps.append(low + high - both - middle - TARGET_INCOME)
        total = _value(
            wide,
            "SELECT SUM(a.income) FROM city.people a JOIN city.people_again b "
            f"ON a.person = b.person WHERE a.age >= -{i}",
        )
        rest = _value(
            wide,
            "SELECT SUM(a.income) FROM city.people a JOIN city.people_again b "
            f"ON a.person = b.person WHERE b.age <> 103 AND a.age >= -{i}",
        )
        joined.append(total - rest - TARGET_INCOME)
    for errors in (overlaps, joined):
        spread, typical = _spread(errors)
        assert spread > 100_000 and typical > 20_000


def test_the_group_by_residual_and_a_carrier_case_meet_noise(wide: Server) -> None:
    """The total less every released district; and a CASE that moves one person to a group."""
    residuals = []
    for i in range(10):
        total = _value(wide, f"SELECT COUNT(*) FROM city.people WHERE age >= -{i}")
        groups = wide.query(
            f"SELECT district, COUNT(*) FROM city.people WHERE age >= -{i} GROUP BY district"
        ).json()
        residuals.append(total - sum(row[1] for row in groups["rows"]))
        answer = wide.query(
            "SELECT grp, SUM(income) FROM (SELECT person, income, CASE WHEN age = 103 THEN 'x' "
            f"ELSE 'y' END AS grp FROM city.people WHERE age >= -{i}) s GROUP BY grp"
        )
        assert answer.status_code == 200, answer.json()
        assert "x" not in [row[0] for row in answer.json()["rows"]]  # one person: not selected
    # Every district holds about 750 people, the target among them: the residual is pure noise.
    assert statistics.pstdev(residuals) > 1


def test_an_answer_says_how_noisy_it_is(wide: Server) -> None:
    body = wide.query(
        "SELECT district, COUNT(*) AS n, AVG(income) AS mean FROM city.people GROUP BY district"
    ).json()
    privacy = body["privacy"]
    assert privacy["mode"] == "dp" and privacy["epsilon"] == pytest.approx(1.0)
    assert privacy["delta"] == 0  # districts come from the card's public domain
    count = privacy["columns"]["n"]
    assert count["mechanism"] == "laplace" and count["half_width_95"] > count["scale"] > 0
    assert set(privacy["columns"]["mean"]) >= {"sum", "count", "bounds"}
    assert sorted(row[0] for row in body["rows"]) == sorted(DISTRICTS)
    # Large groups come back within 1% of the truth (about 750 people each).
    assert all(abs(row[1] - 750) < 0.05 * 750 for row in body["rows"])


def test_a_repeated_question_gets_the_same_answer_and_spends_nothing(shipped: Server) -> None:
    sql = "SELECT district, SUM(income) AS s FROM city.people GROUP BY district"
    first = shipped.query(sql).json()
    spent = _spent(shipped, "analyst")
    again = shipped.query(sql).json()
    assert again["rows"] == first["rows"]
    assert again["privacy"]["reused"] and not first["privacy"]["reused"]
    assert again["privacy"]["epsilon"] == 0 and first["privacy"]["epsilon"] == pytest.approx(1)
    assert again["privacy"]["columns"] == first["privacy"]["columns"]
    assert _spent(shipped, "analyst") == spent == pytest.approx(1.0)
    # Another organisation asking the same question gets its own answer, on its own budget.
    other = shipped.query(sql, "fintech").json()
    assert not other["privacy"]["reused"] and other["rows"] != first["rows"]
    assert _spent(shipped, "fintech") == pytest.approx(1.0)


def test_the_budget_runs_out_with_a_429_naming_the_asset(shipped: Server) -> None:
    for i in range(10):
        assert shipped.query(f"SELECT COUNT(*) FROM city.people WHERE age > {i}").status_code == 200
    refused = shipped.query("SELECT COUNT(*) FROM city.people WHERE age > 99")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "BUDGET_EXHAUSTED"
    assert refused.json()["error"]["violations"] == [
        {"rule": "privacy_budget_exhausted", "column": "city.people"}
    ]
    with shipped.client("analyst") as client:
        budgets = client.get("/v1/budgets").json()
    (people,) = [a for a in budgets["assets"] if a["asset"] == "city.people"]
    assert people["epsilon_spent"] == pytest.approx(10.0) and people["epsilon_left"] == 0
    # A question answered before is still answered: repeating spends nothing.
    assert shipped.query("SELECT COUNT(*) FROM city.people WHERE age > 3").status_code == 200
    # The refusal is recorded; another organisation still has its own budget.
    denied = [e for e in shipped.ledger() if e.get("budget") == "city.people"]
    assert denied and denied[-1]["decision"]["reasons"] == ["privacy_budget_exhausted"]
    assert shipped.query("SELECT COUNT(*) FROM city.people", "fintech").status_code == 200
    with shipped.client("supervisor") as client:
        overseen = client.get("/v1/budgets").json()
    (cap,) = [a for a in overseen["all_developers"] if a["asset"] == "city.people"]
    assert cap["epsilon_spent"] == pytest.approx(11.0)


def test_the_ledger_records_which_mode_answered(shipped: Server) -> None:
    shipped.query("SELECT COUNT(*) FROM city.people WHERE age < 50")
    entry = [e for e in shipped.ledger() if e.get("type") == "query" and e.get("privacy")][-1]
    assert entry["privacy"]["mode"] == "dp" and entry["privacy"]["epsilon"] > 0


def _spent(server: Server, who: str) -> float:
    with server.client(who) as client:
        budgets = client.get("/v1/budgets").json()
    return sum(a["epsilon_spent"] for a in budgets["assets"] if a["asset"] == "city.people")


def _people_grant(server: Server) -> str:
    with server.client("analyst") as client:
        grants = client.get("/v1/grants").json()["items"]
    return next(g["id"] for g in grants if "city.people" in g["assets"])


def test_a_median_answers_under_dp_and_never_under_thresholds(wide: Server, demo) -> None:
    body = wide.query("SELECT district, MEDIAN(income) AS m FROM city.people GROUP BY district")
    assert body.status_code == 200, body.json()
    assert body.json()["privacy"]["columns"]["m"]["mechanism"] == "exponential"
    assert all(10_000 <= row[1] <= 100_000 for row in body.json()["rows"])
    # The tests' demo answers under thresholds alone: a median of real rows is someone's value.
    refused = demo.query("SELECT district, MEDIAN(cost) FROM hospital.visits GROUP BY district")
    assert refused.status_code == 422
    assert refused.json()["error"]["violations"] == [{"rule": "quantile_needs_dp"}]


def test_a_column_read_from_one_row_of_a_group_is_refused(wide: Server) -> None:
    """The red team's record reader: a CASE outside any aggregate picked one person's row."""
    for sql in (
        "SELECT CASE WHEN age = 103 THEN diagnosis END AS d, COUNT(*) FROM city.people "
        "GROUP BY age + LENGTH(diagnosis) > -1",
        "SELECT COUNT(*) FROM city.people HAVING CASE WHEN age = 103 THEN diagnosis END = 'RARE'",
    ):
        refused = wide.query(sql)
        assert refused.status_code == 422, refused.json()
        assert refused.json()["error"]["violations"] == [{"rule": "dp_ungrouped_column"}]


def test_honest_questions_over_thousands_of_people_are_within_one_percent(wide: Server) -> None:
    """At the shipped ε (1 per query) over 3,001 people, one statistic per question."""
    incomes = [10_000 + (i * 37) % 90_000 for i in range(PERSONS)] + [TARGET_INCOME]
    truth = {"COUNT(*)": len(incomes), "SUM(income)": sum(incomes),
             "AVG(income)": sum(incomes) / len(incomes)}  # fmt: skip
    for i in range(5):
        for statistic, true in truth.items():
            # A filter no other test asks: a new question, answered afresh.
            body = wide.query(f"SELECT {statistic} FROM city.people WHERE age > -{100 + i}").json()
            assert body["privacy"]["epsilon"] == pytest.approx(1.0)
            assert abs(body["rows"][0][0] - true) <= 0.01 * true, statistic


HEAVY = {
    **PEOPLE,
    "id": "city.heavy",
    "title": "Heavy",
    "columns": [
        {"name": "person", "type": "VARCHAR", "role": "privacy_unit"},
        {"name": "value", "type": "INTEGER", "role": "measure", "bounds": [0, 10]},
    ],
}


def test_a_spend_survives_the_gateway_killed_between_reservation_and_answer(tmp_path) -> None:
    """kill -9 while a private query runs: its reservation is durable and is not given back;
    its question stays unanswered, and another question spends afresh."""
    server = start_server(tmp_path / "home")
    # One person with 3,000 rows in both assets: the join makes 9 million rows to bound.
    rows = "person,value\n" + "p0,1\n" * 3000 + "".join(f"p{i},1\n" for i in range(1, 200))
    with server.client("city-hospital") as client:
        for card in (HEAVY, dict(HEAVY, id="city.heavy_again")):
            registered = client.post(
                "/v1/assets",
                data={"card": json.dumps(card)},
                files={"file": ("heavy.csv", io.BytesIO(rows.encode()), "text/csv")},
            )
            assert registered.status_code == 201, registered.json()
    server.grant("analyst", ["city.heavy", "city.heavy_again"], PARTIES)
    slow = "SELECT COUNT(*) FROM city.heavy a JOIN city.heavy_again b ON a.person = b.person"

    def ask() -> None:
        with contextlib.suppress(httpx.HTTPError):  # the gateway dies under it
            server.query(slow)

    asking = threading.Thread(target=ask, daemon=True)
    asking.start()
    control = sqlite3.connect(tmp_path / "home" / "control.db")
    pending = "SELECT COUNT(*) FROM private_answers WHERE answer IS NULL"
    spent = "SELECT epsilon_micro FROM privacy_spends WHERE asset = ? AND spender <> '*'"
    deadline = time.monotonic() + 60
    while control.execute(pending).fetchone()[0] == 0:
        assert time.monotonic() < deadline, "the query was never reserved"
        time.sleep(0.02)
    server.process.kill()
    server.process.wait(timeout=20)
    restarted = start_server(tmp_path / "home", command="serve")
    try:
        assert control.execute(pending).fetchone()[0] == 1  # never answered
        assert control.execute(spent, ("city.heavy",)).fetchone()[0] == 1_000_000
        again = restarted.query(slow)
        assert again.status_code == 409  # still counted as being answered, never refunded
        assert again.json()["error"]["violations"] == [{"rule": "question_in_flight"}]
        other = restarted.query("SELECT COUNT(*) FROM city.heavy")
        assert other.status_code == 200, other.json()
        assert control.execute(spent, ("city.heavy",)).fetchone()[0] == 2_000_000
    finally:
        control.close()
        stop_server(restarted)


def test_one_pass_over_checked_rows_per_unit_still_meets_the_complement_pair(wide) -> None:
    """A card declaring one row per person is checked when registered (a file with a second
    row for anyone is refused), then answered in one pass: the pair still meets noise."""
    checked = dict(PEOPLE, id="city.people_checked", privacy={"max_rows_per_unit": 1})
    twice = _people_csv() + "p_target,103,north,RARE,1\n"
    with wide.client("city-hospital") as client:
        for body, rule in ((twice, "rows_per_unit_exceeded"), (_people_csv(), None)):
            registered = client.post(
                "/v1/assets",
                data={"card": json.dumps(checked)},
                files={"file": ("people.csv", io.BytesIO(body.encode()), "text/csv")},
            )
            assert registered.status_code == (201 if rule is None else 422), registered.json()
            if rule is not None:
                violations = registered.json()["error"]["violations"]
                assert violations == [{"rule": rule, "column": "person"}]
    wide.grant("analyst", ["city.people_checked"], PARTIES, ("sql",))
    errors = []
    for i in range(12):
        response = wide.query(f"SELECT SUM(income) FROM city.people_checked WHERE age >= -{i}")
        assert response.json()["privacy"]["contribution"]["max_rows_per_unit"] == 1
        total = response.json()["rows"][0][0]
        rest = _value(
            wide,
            f"SELECT SUM(income) FROM city.people_checked WHERE NOT (age = 103) AND age >= -{i}",
        )
        errors.append(total - rest - TARGET_INCOME)
    spread, typical = _spread(errors)
    assert spread > 100_000 and typical > 20_000

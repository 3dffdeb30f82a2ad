"""No channel but the released tables, tried over HTTP against real servers: ledger entries
reach only their parties, CPU figures are shown at the billing step, and a job's developer
learns nothing of a run before its outputs are released."""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path

import httpx
import pytest

from ledger import leaf_hash, parties, verify_checkpoint, verify_consistency, verify_inclusion
from ledger.pricing import CPU_STEP_MS
from services.job_runs import HELD_MARGIN_S
from tests.gateway.test_jobs import wait
from tests.support import OPERATOR_POLICY, Server, start_server, stop_server

ORIGIN = "veil.local/ledger"
# Fields a developer may see of a job at any time: what it sent, and where it stands.
ALWAYS_SHOWN = {"id", "status", "developer", "grant_id", "code_sha256", "submitted_at"}
serial = count()

BY_DISTRICT = """
answer = sql("SELECT district, COUNT(*) AS visits FROM hospital.visits GROUP BY district")
publish("by_district", [["district", "label"], ["visits", "count"]], answer["rows"])
"""


def _client(server: Server, key: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=60)


def _developer(server: Server) -> str:
    """A new developer with no grant at all; its API key."""
    with server.client("admin") as admin:
        made = admin.post("/v1/principals", json={"id": f"outsider-{next(serial)}",
                                                  "roles": ["developer"], "org": "Elsewhere"})  # fmt: skip
    assert made.status_code == 201, made.json()
    return made.json()["api_key"]


def _pages(client: httpx.Client, limit: int, after: int | None = None) -> list[dict]:
    """Every entry the client may read, page by page as a reader would."""
    items: list[dict] = []
    while True:
        params = {"limit": limit, **({"after": after} if after is not None else {})}
        page = client.get("/v1/ledger/entries", params=params)
        assert page.status_code == 200, page.json()
        if not page.json()["items"]:
            return items
        items += page.json()["items"]
        after = items[-1]["index"]


def _readable(server: Server, who: str | None = None, key: str | None = None) -> dict[int, dict]:
    with _client(server, key) if key else server.client(who) as client:
        return {item["index"]: json.loads(item["data"]) for item in _pages(client, 1000)}


def _entry(server: Server, who: str, index: int) -> dict:
    """The entry at `index`, read as `who`, who must be a party to it."""
    with server.client(who) as client:
        items = client.get("/v1/ledger/entries", params={"after": index - 1, "limit": 1}).json()
    assert items["items"][0]["index"] == index
    return json.loads(items["items"][0]["data"])


def _receipt(server: Server, sql: str, who: str = "analyst") -> int:
    response = server.query(sql, who=who)
    assert response.status_code == 200, response.json()
    return response.json()["receipt"]["ledger_index"]


# Ledger entries reach the parties to them.


def test_a_developer_without_a_grant_reads_no_other_developers_entries(demo) -> None:
    secret = _receipt(demo, "SELECT plan, COUNT(*) AS n FROM insurance.claims GROUP BY plan")
    key = _developer(demo)
    seen = _readable(demo, key=key)
    assert secret not in seen
    assert all(entry.get("principal") != "analyst" for entry in seen.values())
    # What it may read is about itself: its own creation, by the admin.
    assert seen and all("outsider-" in json.dumps(entry) for entry in seen.values())
    # Asking for the exact index, or just before it, skips to what it may read.
    with _client(demo, key) as client:
        for after in (secret - 1, -1, None):
            params = {"limit": 1, **({"after": after} if after is not None else {})}
            items = client.get("/v1/ledger/entries", params=params).json()["items"]
            assert all(item["index"] != secret for item in items)


def test_a_developer_with_a_grant_on_the_same_asset_cannot_read_anothers_use(demo) -> None:
    secret = _receipt(demo, "SELECT plan, COUNT(*) AS n FROM insurance.claims GROUP BY plan")
    mine = _receipt(demo, "SELECT plan, COUNT(*) AS n FROM insurance.claims GROUP BY plan",
                    who="fintech")  # fmt: skip
    seen = _readable(demo, "fintech")
    assert mine in seen and secret not in seen
    assert all(entry.get("principal") != "analyst" for entry in seen.values())
    with demo.client("fintech") as client:
        usage = client.get("/v1/usage").json()
    assert {item["principal"] for item in usage["items"]} == {"fintech"}


def test_a_provider_reads_entries_on_its_assets_and_no_others(demo) -> None:
    visits = _receipt(demo, "SELECT district, COUNT(*) AS n FROM hospital.visits GROUP BY district")
    claims = _receipt(demo, "SELECT plan, COUNT(*) AS n FROM insurance.claims GROUP BY plan")
    hospital, insurer = _readable(demo, "city-hospital"), _readable(demo, "insurer")
    assert visits in hospital and claims not in hospital
    assert claims in insurer and visits not in insurer
    # Everything else it reads names it, or an asset it provides (tests register more).
    with demo.client("city-hospital") as client:
        cards = client.get("/v1/assets").json()["items"]
    provided = {card["id"] for card in cards if card["provider"] == "city-hospital"}
    for entry in hospital.values():
        named = parties(entry)
        assert (
            "city-hospital" in named.principals
            or named.assets & provided
            or (not named.assets and named.grants)
        ), entry
    for who in ("city-hospital", "insurer"):
        ours = {card["id"] for card in cards if card["provider"] == who}
        with demo.client(who) as client:
            items = client.get("/v1/usage", params={"limit": 1000}).json()["items"]
        assert items and all(ours & set(i["assets"]) or i["principal"] == who for i in items)
    # Grants on its assets, and the approvals it made, are its entries too.
    kinds = {entry["type"] for entry in hospital.values()}
    assert {"asset_registered", "grant_requested", "grant_approved"} <= kinds


def test_supervisors_operators_and_admin_read_every_entry(demo) -> None:
    visits = _receipt(demo, "SELECT district, COUNT(*) AS n FROM hospital.visits GROUP BY district")
    with demo.client(None) as anonymous:
        size = anonymous.get("/v1/ledger/checkpoint").json()["tree_size"]
    for who in ("supervisor", "operator", "admin"):
        seen = _readable(demo, who)
        assert visits in seen
        assert set(range(size)) <= set(seen)


def test_paging_across_gaps_returns_every_readable_entry_once(demo) -> None:
    for _ in range(3):
        _receipt(demo, "SELECT plan, COUNT(*) AS n FROM insurance.claims GROUP BY plan")
        _receipt(demo, "SELECT plan, COUNT(*) AS n FROM insurance.claims GROUP BY plan", "fintech")
    with demo.client("analyst") as client:
        whole = [item["index"] for item in _pages(client, 1000)]
        for limit in (1, 2, 7):
            paged = [item["index"] for item in _pages(client, limit)]
            assert paged == whole
        # A page starting inside a gap starts at the next readable entry.
        gap = next(i for i in range(whole[0], whole[-1]) if i not in whole)
        first = client.get("/v1/ledger/entries", params={"after": gap, "limit": 1}).json()
        assert [item["index"] for item in first["items"]] == [min(i for i in whole if i > gap)]
    assert whole == sorted(set(whole))
    assert len(whole) < len(_readable(demo, "supervisor"))


def test_a_receipt_holder_verifies_inclusion_and_consistency_with_no_key(demo) -> None:
    response = demo.query("SELECT plan, COUNT(*) AS n FROM insurance.claims GROUP BY plan")
    receipt = response.json()["receipt"]
    with demo.client("analyst") as owner:
        item = owner.get("/v1/ledger/entries",
                         params={"after": receipt["ledger_index"] - 1, "limit": 1}).json()  # fmt: skip
    data = item["items"][0]["data"]
    assert leaf_hash(data.encode()).hex() == receipt["leaf_hash"]
    with demo.client(None) as anyone:
        key = anyone.get("/v1/ledger/public-key").json()["public_key"]
        first = anyone.get("/v1/ledger/checkpoint").json()
        size, root = verify_checkpoint(first["note"], key, ORIGIN)
        path = anyone.get("/v1/ledger/proof/inclusion",
                          params={"index": receipt["ledger_index"], "size": size}).json()  # fmt: skip
        assert verify_inclusion(bytes.fromhex(receipt["leaf_hash"]), receipt["ledger_index"],
                                size, [bytes.fromhex(h) for h in path["audit_path"]], root)  # fmt: skip
        _receipt(demo, "SELECT plan, COUNT(*) AS n FROM insurance.claims GROUP BY plan", "fintech")
        later = anyone.get("/v1/ledger/checkpoint").json()
        size2, root2 = verify_checkpoint(later["note"], key, ORIGIN)
        proof = anyone.get("/v1/ledger/proof/consistency", params={"from": size, "to": size2})
        assert verify_consistency(size, size2, root, root2,
                                  [bytes.fromhex(h) for h in proof.json()["proof"]])  # fmt: skip
        # Entries themselves are not public.
        assert anyone.get("/v1/ledger/entries").status_code == 401


# CPU and time figures at the billing step.


def test_cpu_figures_a_developer_reads_are_whole_billing_steps(demo) -> None:
    index = _receipt(demo, "SELECT district, AVG(cost) AS c FROM hospital.visits GROUP BY district")
    entry = _entry(demo, "analyst", index)
    assert entry["usage"]["cpu_ms"] % CPU_STEP_MS == 0
    with demo.client("analyst") as client:
        usage = client.get("/v1/usage", params={"limit": 1000}).json()
        submitted = client.post("/v1/jobs", json={"code": BY_DISTRICT}).json()
    assert usage["cpu_ms"] % CPU_STEP_MS == 0
    assert usage["items"] and all(i["cpu_ms"] % CPU_STEP_MS == 0 for i in usage["items"])
    job = wait(demo, submitted["id"], until={"succeeded", "failed", "rejected", "timeout"})
    assert job["status"] == "succeeded", job
    assert job["cpu_ms"] > 0 and job["cpu_ms"] % CPU_STEP_MS == 0
    metered = [e for e in _readable(demo, "analyst").values()
               if e.get("job_id") == job["id"] and e["type"] in ("job", "query")]  # fmt: skip
    assert len(metered) == 2
    assert all(e["usage"]["cpu_ms"] % CPU_STEP_MS == 0 for e in metered)


def test_a_suppressed_rare_group_and_an_empty_one_meter_alike(demo) -> None:
    """The planted patient aged 104 is suppressed; nobody is aged 150. Asked many times, the
    two must be metered alike in every figure the developer reads."""
    seen: dict[str, set[str]] = {}
    for age in (104, 150) * 15:
        sql = f"SELECT sex, COUNT(*) AS n FROM hospital.visits WHERE age = {age} GROUP BY sex"
        response = demo.query(sql)
        assert response.status_code == 200, response.json()
        body = response.json()
        entry = _entry(demo, "analyst", body["receipt"]["ledger_index"])
        figures = {
            "usage": entry["usage"],
            "cost": entry["cost"],
            "response": {k: body[k] for k in ("columns", "rows", "suppressed_rows", "cost")},
        }
        seen.setdefault(str(age), set()).add(json.dumps(figures, sort_keys=True))
    assert seen["104"] == seen["150"]


# A job's developer sees its status and nothing else until its outputs are released.


def _only_status(view: dict) -> bool:
    return all(value is None for name, value in view.items() if name not in ALWAYS_SHOWN)


def test_a_running_job_shows_its_developer_the_status_only(demo) -> None:
    code = """
answer = sql("SELECT district, COUNT(*) AS visits FROM hospital.visits GROUP BY district")
publish("by_district", [["district", "label"], ["visits", "count"]], answer["rows"])
while True:
    pass
"""
    with demo.client("analyst") as owner:
        job_id = owner.post("/v1/jobs", json={"code": code}).json()["id"]
        running = wait(demo, job_id, until={"running"})
        view = owner.get(f"/v1/jobs/{job_id}").json()
        listed = [j for j in owner.get("/v1/jobs").json()["items"] if j["id"] == job_id]
        assert owner.post(f"/v1/jobs/{job_id}/cancel").status_code == 200
    assert _only_status(running) and _only_status(view) and _only_status(listed[0])
    assert view["status"] == "running"
    with demo.client("city-hospital") as reviewer:
        assert reviewer.get(f"/v1/jobs/{job_id}").json()["started_at"] is not None
    ended = wait(demo, job_id, until={"cancelled"})
    assert ended["error"]["code"] == "CANCELLED"


def test_gate_refusals_name_rules_never_names_the_job_chose(demo) -> None:
    """The job picks a column name by a value it read, then breaks a rule on that column."""
    errors = set()
    for pick in ("len(answer['rows']) > 3", "answer['rows'][0][1] % 2 == 0"):
        code = f"""
answer = sql("SELECT district, COUNT(*) AS n FROM hospital.visits GROUP BY district")
name = "district" if {pick} else "area"
publish("t", [name, "n"], [["P000042", 50]])
"""
        with demo.client("analyst") as owner:
            job_id = owner.post("/v1/jobs", json={"code": code}).json()["id"]
        job = wait(demo, job_id, until={"rejected", "succeeded", "failed"})
        assert job["status"] == "rejected", job
        assert job["error"]["violations"]
        assert all(set(v) == {"rule"} for v in job["error"]["violations"])
        assert "district" not in json.dumps(job["error"]) and "area" not in json.dumps(job)
        errors.add(json.dumps(job["error"], sort_keys=True))
    assert len(errors) == 1


HELD_RULE = """package veil.authz

import rego.v1

# Every job on hospital visits waits for a human.
manual_review contains "hospital_visits" if {
\tinput.scope == "job:submit"
\tsome a in input.resource.assets
\ta.id == "hospital.visits"
}
"""

# Ways a held job can end, each chosen by what it read.
ENDINGS = {
    "succeeds": BY_DISTRICT,
    "fails": BY_DISTRICT + "\nif answer['rows'][0][1] > 0:\n    raise ValueError('x')\n",
    "times out": BY_DISTRICT + "\nwhile answer['rows'][0][1] > 0:\n    pass\n",
    "breaks a gate rule": BY_DISTRICT.replace('answer["rows"])', '[["P000042", 50]])'),
}
TRUE_STATUS = {"succeeds": "review", "fails": "failed", "times out": "timeout",
               "breaks a gate rule": "rejected"}  # fmt: skip


WALL_S, GATE_S = 4, 2
SQL_BY_DISTRICT = "SELECT district, COUNT(*) AS visits FROM hospital.visits GROUP BY district"
# A held job keeps its slot to its latest end, WALL_S + GATE_S + HELD_MARGIN_S after its start:
# room for every job a test holds at once (and the last test's, still in their slots), so a
# test waits out that footprint once, not once per job. The slot itself has its own server.
HELD_AT_ONCE = 8


def _held_env(folder: Path, in_flight: int) -> dict[str, str]:
    """Short job limits, jobs on hospital visits held for review by a policy module written
    into `folder`, and `in_flight` of a developer's jobs in their slots at once."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "review.rego").write_text(HELD_RULE)
    shutil.copy(OPERATOR_POLICY / "tests.rego", folder)
    slots = max(2, in_flight)  # a held job waits out its footprint in its slot
    return {"VEIL_JOB_TIMEOUT_S": str(WALL_S), "VEIL_JOB_CPU_S": "2",
            "VEIL_JOB_GATE_TIMEOUT_S": str(GATE_S), "VEIL_JOB_CONCURRENCY": str(slots),
            "VEIL_JOBS_IN_FLIGHT_PER_PRINCIPAL": str(in_flight), "VEIL_POLICY_DIR": str(folder)}  # fmt: skip


def _warmed(server: Server) -> Server:
    """The server once enclave workers for the jobs' queries at once have answered: a fresh
    worker's first answer waits for it to start, seconds a job's WALL_S cannot spare."""
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: server.query(SQL_BY_DISTRICT), range(4)))
    assert all(answer.status_code == 200 for answer in answers), [a.json() for a in answers]
    return server


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Jobs on hospital visits held for review by policy, with a short wall-clock limit."""
    env = _held_env(tmp_path_factory.mktemp("held-policies"), HELD_AT_ONCE)
    server = start_server(tmp_path_factory.mktemp("held") / "home", env=env)
    try:
        yield _warmed(server)
    finally:
        stop_server(server)


@pytest.fixture
def held_one_at_a_time(tmp_path: Path) -> Iterator[Server]:
    """Held as in `held`, with one job of a developer's running (or in its slot) at a time."""
    server = start_server(tmp_path / "home", env=_held_env(tmp_path / "policies", 1))
    try:
        yield _warmed(server)
    finally:
        stop_server(server)


def _held_jobs(server: Server) -> dict[str, str]:
    ids = {}
    with server.client("analyst") as owner:
        for name, code in ENDINGS.items():
            submitted = owner.post("/v1/jobs", json={"code": code})
            assert submitted.status_code == 202, submitted.json()
            ids[name] = submitted.json()["id"]
    return ids


def _without_identity(view: dict) -> dict:
    return {k: v for k, v in view.items() if k not in ("id", "code_sha256", "submitted_at")}


def test_every_ending_of_a_held_job_looks_the_same_to_its_developer(held) -> None:
    ids = _held_jobs(held)
    # The reviewer sees how each really ended.
    for name, job_id in ids.items():
        real = wait(held, job_id, until={TRUE_STATUS[name]}, who="operator")
        assert real["status"] == TRUE_STATUS[name]
        # Ended for the reviewer; to its developer still running, or already in review.
        with held.client("analyst") as owner:
            assert owner.get(f"/v1/jobs/{job_id}").json()["status"] in ("running", "review")
    views = {name: wait(held, job_id, until={"review"}) for name, job_id in ids.items()}
    assert all(_only_status(view) for view in views.values())
    assert len({json.dumps(_without_identity(v), sort_keys=True) for v in views.values()}) == 1
    with held.client("analyst") as owner:
        for status in ("failed", "timeout", "rejected", "succeeded"):
            listed = owner.get("/v1/jobs", params={"status": status}).json()["items"]
            assert not set(ids.values()) & {job["id"] for job in listed}
        listed = owner.get("/v1/jobs", params={"status": "review"}).json()["items"]
        assert set(ids.values()) <= {job["id"] for job in listed}
        # Whether a cancel still finds it running would say when it ended.
        for job_id in ids.values():
            assert owner.post(f"/v1/jobs/{job_id}/cancel").status_code == 409
        # A refusal records the job it refused; its developer reads that record.
        for job_id in ids.values():
            review = {"decision": "approve", "reason": "mine"}
            assert owner.post(f"/v1/jobs/{job_id}/review", json=review).status_code == 403
    refusals = [e["resource"]["job"] for e in _readable(held, "analyst").values()
                if e["type"] == "access_denied" and "job" in e.get("resource", {})]  # fmt: skip
    assert {job["id"] for job in refusals} == set(ids.values())
    assert {job["status"] for job in refusals} == {"review"}


def _runs_written(server: Server, job_ids: Iterator[str] | list[str]) -> dict[str, list[dict]]:
    """Each held job's entries once its run is in the ledger (at its latest end), as the
    supervisor reads them."""
    waiting = set(job_ids)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        entries = _readable(server, "supervisor")
        written = {e["job_id"] for e in entries.values() if e["type"] == "job_run"}
        if waiting <= written:
            return {
                job_id: [e for _, e in sorted(entries.items()) if e.get("job_id") == job_id]
                for job_id in waiting
            }
        time.sleep(0.1)
    raise AssertionError(f"the runs of {waiting} were never written")


def test_a_held_jobs_run_stays_off_its_developers_ledger_and_usage(held) -> None:
    ids = _held_jobs(held)
    written = _runs_written(held, ids.values())
    mine = _readable(held, "analyst")
    charges = set()
    for job_id in ids.values():
        seen = [e for e in mine.values() if e.get("job_id") == job_id]
        assert [(e["type"], e.get("outcome")) for e in seen] == [
            ("job_submitted", None),
            ("job", "held"),
        ]
        charges.add(json.dumps({k: seen[1][k] for k in ("usage", "cost", "postings")}))
    assert len(charges) == 1  # one fixed price, however each ran
    reviewer = _readable(held, "city-hospital")
    for job_id in ids.values():
        kinds = [e["type"] for e in reviewer.values() if e.get("job_id") == job_id]
        assert kinds == [e["type"] for e in written[job_id]] == ["job_submitted", "job", "job_run"]
        (run,) = [e for e in reviewer.values() if e["type"] == "job_run" and e["job_id"] == job_id]
        assert "query" in {record["type"] for record in run["records"]}
    with held.client("analyst") as owner:
        usage = owner.get("/v1/usage", params={"limit": 1000}).json()
    shown = [item for item in usage["items"] if item["reference"] in ids.values()]
    assert sorted(item["reference"] for item in shown) == sorted(ids.values())
    assert {item["outcome"] for item in shown} == {"held"}
    held_queries = {record["query_id"] for e in reviewer.values() if e["type"] == "job_run"
                    for record in e["records"] if record["type"] == "query"}  # fmt: skip
    assert held_queries and not held_queries & {item["reference"] for item in usage["items"]}


def test_a_reviewers_decision_shows_the_developer_the_real_ending_or_a_rejection(held) -> None:
    ids = _held_jobs(held)
    for name, job_id in ids.items():
        wait(held, job_id, until={"review"})
        # Its developer sees `review` from its start plus WALL_S, however it ended; its reviewer
        # decides once it has really ended, which a job run to its time limit may not have yet.
        wait(held, job_id, until={TRUE_STATUS[name]}, who="city-hospital")
    decisions = {"succeeds": "approve", "fails": "approve", "times out": "reject",
                 "breaks a gate rule": "reject"}  # fmt: skip
    with held.client("city-hospital") as reviewer:
        for name, decision in decisions.items():
            decided = reviewer.post(f"/v1/jobs/{ids[name]}/review",
                                    json={"decision": decision, "reason": "checked"})  # fmt: skip
            assert decided.status_code == 200, decided.json()
        again = reviewer.post(f"/v1/jobs/{ids['fails']}/review",
                              json={"decision": "reject", "reason": "twice"})  # fmt: skip
        assert again.status_code == 409
    with held.client("analyst") as owner:
        shown = {name: owner.get(f"/v1/jobs/{job_id}").json() for name, job_id in ids.items()}
    assert shown["succeeds"]["status"] == "succeeded" and shown["succeeds"]["outputs"]
    assert shown["fails"]["status"] == "failed"
    # Approved, the real ending: its kind and line, computed from released answers only.
    line = ENDINGS["fails"].splitlines().index("    raise ValueError('x')") + 1
    assert shown["fails"]["error"] == {"code": "JOB_FAILED", "violations": [],
                                       "kind": "ValueError", "line": line}  # fmt: skip
    for name in ("times out", "breaks a gate rule"):
        view = shown[name]
        assert view["status"] == "rejected"
        assert view["error"] == {"code": "RELEASE_REJECTED", "violations": []}
        assert view["cpu_ms"] is None and view["disclosure"] is None
    assert _without_identity(shown["times out"]) == _without_identity(shown["breaks a gate rule"])
    _runs_written(held, ids.values())
    mine = _readable(held, "analyst")
    approved = {e["type"] for e in mine.values() if e.get("job_id") == ids["succeeds"]}
    assert {"job_run", "job", "job_release"} <= approved
    rejected = sorted((e["type"], e.get("by") or "") for e in mine.values()
                      if e.get("job_id") == ids["times out"])  # fmt: skip
    assert rejected == [("job", ""), ("job_release", "city-hospital"), ("job_submitted", "")]


def test_a_held_job_frees_its_developers_share_only_when_it_could_last_have_ended(
    held_one_at_a_time: Server,
) -> None:
    """One job of the developer runs at a time. A held job that fails at once hands the next
    its start no sooner than one that ran to every limit would: the start says nothing."""
    server = held_one_at_a_time
    with server.client("analyst") as owner:
        first = owner.post("/v1/jobs", json={"code": ENDINGS["fails"]}).json()["id"]
        second = owner.post("/v1/jobs", json={"code": "x = 1"}).json()["id"]
    assert wait(server, first, until={"failed"}, who="operator")["status"] == "failed"
    started = wait(server, second, until={"running", "review"}, who="operator")["started_at"]
    with server.client("operator") as operator:
        began = operator.get(f"/v1/jobs/{first}").json()["started_at"]
    gap = datetime.fromisoformat(started) - datetime.fromisoformat(began)
    assert gap >= timedelta(seconds=WALL_S + GATE_S + HELD_MARGIN_S)


def test_a_held_job_stopped_while_it_ran_looks_like_any_other_ending(held) -> None:
    """A developer can time a stop (its grant's term ends when it asked); whether the stop
    still found the job running must not show."""
    with held.client("analyst") as owner:
        job_id = owner.post("/v1/jobs", json={"code": "while True:\n    pass"}).json()["id"]
        grant = owner.get(f"/v1/jobs/{job_id}").json()["grant_id"]
    wait(held, job_id, until={"running"}, who="operator")
    stop = {"grant": grant, "reason": "audit"}
    with held.client("supervisor") as supervisor:
        assert supervisor.post("/v1/emergency/suspend", json=stop).status_code == 200
        try:
            assert wait(held, job_id, until={"cancelled"}, who="operator")
        finally:
            supervisor.post("/v1/emergency/resume", json=stop)
    with held.client("analyst") as owner:
        assert owner.get(f"/v1/jobs/{job_id}").json()["status"] in ("running", "review")
    assert _only_status(wait(held, job_id, until={"review"}))
    with held.client("city-hospital") as reviewer:
        approve = {"decision": "approve", "reason": "seen"}
        assert reviewer.post(f"/v1/jobs/{job_id}/review", json=approve).status_code == 200
    assert wait(held, job_id, until={"cancelled"})["error"]["code"] == "CANCELLED"


def _asking(queries: int) -> str:
    """A job that asks `queries` questions: what an attacker would pick by a value it read."""
    return "x = 0\n" + "".join(f'x += len(sql("{SQL_BY_DISTRICT}")["rows"])\n' * queries)


def _latest_end(job: dict) -> datetime:
    started = datetime.strptime(job["started_at"], "%Y-%m-%dT%H:%M:%SZ")
    return started + timedelta(seconds=WALL_S + GATE_S + HELD_MARGIN_S)


def test_a_held_jobs_footprint_is_the_same_however_many_queries_it_asked(held) -> None:
    """The public log's size, the developer's entries and its charge: each the same for a held
    job that asked nothing and one that asked a dozen questions, and written no sooner than
    the job could last have ended. Only its reviewers read what it really did."""
    asked = {0: None, 4: None, 12: None}
    ended = {"review", "failed", "timeout"}
    with held.client("analyst") as owner:
        for queries in asked:
            submitted = owner.post("/v1/jobs", json={"code": _asking(queries)})
            asked[queries] = submitted.json()["id"]
            # Each asks its questions alone, as when one job runs at a time, so a dozen fit in
            # WALL_S on a loaded machine; only their footprints overlap.
            wait(held, asked[queries], who="operator", until=ended)
    written = _runs_written(held, asked.values())
    mine = _readable(held, "analyst")
    charges = set()
    for queries, job_id in asked.items():
        entries = written[job_id]
        assert [e["type"] for e in entries] == ["job_submitted", "job", "job_run"]
        job = wait(held, job_id, who="operator", until=ended)
        for entry in entries[1:]:
            at = datetime.strptime(entry["at"], "%Y-%m-%dT%H:%M:%SZ")
            assert at >= _latest_end(job), (queries, entry["type"])
        records = entries[2]["records"]
        assert [r["type"] for r in records].count("query") == queries
        assert all(r["cost"]["amount_minor"] == 0 for r in records if r["type"] == "query")
        seen = [e for e in mine.values() if e.get("job_id") == job_id]
        assert [e["type"] for e in seen] == ["job_submitted", "job"]
        charges.add(json.dumps({k: seen[1][k] for k in ("outcome", "usage", "cost", "postings")}))
    assert len(charges) == 1
    assert json.loads(charges.pop())["usage"] == {"cpu_ms": 2000}  # its whole CPU limit


def test_a_held_job_reserves_its_quota_before_it_runs_whatever_it_asks(held) -> None:
    """A grant's quota use, which its developer reads, moves by the same reservation for a
    held job that asks nothing and one that asks seven questions; a reservation the quota can
    only partly cover caps the job's questions, and nothing is ever given back."""
    with held.client("analyst") as owner:
        asked = owner.post(
            "/v1/grants",
            json={"assets": ["hospital.visits"], "purpose": "public_welfare", "scenario": "s",
                  "methods": ["job"], "valid_until": "2030-01-01T00:00:00Z",
                  "quotas": {"queries_per_day": 205}},
        )  # fmt: skip
    assert asked.status_code == 201, asked.json()
    grant_id = asked.json()["id"]
    held.approve(grant_id, "city-hospital", "supervisor")
    rows = held.client("analyst").get("/v1/assets/hospital.visits").json()["row_count"]
    use = []
    job_ids = []
    for queries in (0, 7, 7):
        with held.client("analyst") as owner:
            submitted = owner.post(
                "/v1/jobs", json={"code": _asking(queries), "grant_id": grant_id}
            )
            assert submitted.status_code == 202, submitted.json()
            job_ids.append(submitted.json()["id"])
            # Really ended (as its reviewers see) before the next starts: each reserves in
            # turn, and the quota is read once every question the job asked was answered.
            wait(held, job_ids[-1], who="operator")
            use.append(owner.get(f"/v1/grants/{grant_id}").json()["quota_use"])
    assert [u["queries_today"] for u in use] == [100, 200, 205]
    assert [u["rows_scanned"] for u in use] == [100 * rows, 200 * rows, 205 * rows]
    runs = _runs_written(held, job_ids)
    with held.client("analyst") as owner:
        # Writing the runs, at each job's latest end, gives nothing back.
        assert owner.get(f"/v1/grants/{grant_id}").json()["quota_use"] == use[-1]
    answered = [
        [r["type"] for r in runs[job_id][-1]["records"]].count("query") for job_id in job_ids
    ]
    assert answered == [0, 7, 5]


def test_a_held_jobs_run_survives_its_gateway_and_is_written_when_due(tmp_path) -> None:
    """Killed while a held job runs, the gateway keeps the run it recorded; started again, it
    writes that run at the job's latest end, with every query the job was answered."""
    # The restarted gateway fails the job its killed one ran once that one's lease runs out:
    # a short lease, so the run is written at the job's latest end rather than a default
    # lease (30 s) after the kill.
    env = {**_held_env(tmp_path / "policies", 1), "VEIL_JOB_LEASE_S": "6"}
    server = _warmed(start_server(tmp_path / "home", env=env))
    code = _asking(3) + "while True:\n    pass\n"
    with server.client("analyst") as owner:
        job_id = owner.post("/v1/jobs", json={"code": code}).json()["id"]
    control = sqlite3.connect(tmp_path / "home" / "control.db")
    deadline = time.monotonic() + 60
    traced = "SELECT entry FROM job_traces WHERE job_id = ?"

    def asked() -> int:
        entries = control.execute(traced, (job_id,)).fetchall()
        return [json.loads(entry)["type"] for (entry,) in entries].count("query")

    while asked() < 3:
        assert time.monotonic() < deadline, "the job's queries were never recorded"
        time.sleep(0.05)
    server.process.kill()
    server.process.wait(timeout=20)
    restarted = start_server(tmp_path / "home", env=env, command="serve")
    try:
        (run,) = [e for e in _runs_written(restarted, [job_id])[job_id] if e["type"] == "job_run"]
        assert [r["type"] for r in run["records"]].count("query") == 3
        assert control.execute(traced, (job_id,)).fetchall() == []
        mine = [e for e in _readable(restarted, "analyst").values() if e.get("job_id") == job_id]
        assert [(e["type"], e.get("outcome")) for e in mine] == [
            ("job_submitted", None),
            ("job", "held"),
        ]
    finally:
        control.close()
        stop_server(restarted)


def _short_grant(server: Server, seconds: int) -> dict:
    """A job grant on hospital visits whose term ends `seconds` from now, approved."""
    until = (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with server.client("analyst") as owner:
        asked = owner.post(
            "/v1/grants",
            json={"assets": ["hospital.visits"], "purpose": "public_welfare", "scenario": "s",
                  "methods": ["job"], "valid_until": until},
        )  # fmt: skip
    assert asked.status_code == 201, asked.json()
    server.approve(asked.json()["id"], "city-hospital", "supervisor")
    return asked.json()


def _expiry_of(server: Server, grant_id: str) -> dict:
    """The grant's expiry entry as its developer reads it, once written. Reading the ledger
    expires nothing, so the gateway's own clock must write it."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for entry in _readable(server, "analyst").values():
            if entry["type"] == "grant_expired" and entry["grant"] == grant_id:
                return entry
        time.sleep(0.2)
    raise AssertionError(f"grant {grant_id} was never recorded as expired")


def test_a_grant_expiring_under_a_held_job_says_nothing_of_whether_it_still_ran(held) -> None:
    """The expiry of a grant is recorded by the clock, whoever asks what, and its entry, which
    the developer reads, is the same for a held job that was still busy when the term ended
    and for one that had long returned."""
    jobs = {}
    for code in ("while True:\n    pass\n", "x = 1\n"):
        grant = _short_grant(held, 3)
        with held.client("analyst") as owner:
            submitted = owner.post("/v1/jobs", json={"code": code, "grant_id": grant["id"]})
            assert submitted.status_code == 202, submitted.json()
        jobs[grant["id"]] = submitted.json()["id"]
    entries = []
    for grant_id in jobs:
        entry = _expiry_of(held, grant_id)
        named = ("grant", "valid_until", "at", "idempotency_key")
        entries.append({k: v for k, v in entry.items() if k not in named})
    _runs_written(held, list(jobs.values()))
    assert entries[0] == entries[1] == {"type": "grant_expired"}


SLOW_JOIN = (
    "SELECT v.visit_date, c.claim_month, c.plan, c.status, COUNT(*) AS n FROM hospital.visits v "
    "JOIN insurance.claims c ON v.facility_code = c.facility_code "
    "GROUP BY v.visit_date, c.claim_month, c.plan, c.status"
)


def test_a_held_jobs_time_limit_cancels_the_query_it_is_waiting_on(held) -> None:
    """A slow answer must not stretch a held job's run past its latest end (a red-team round
    timed the overrun from outside): at its time limit, the query in flight is cancelled."""
    with held.client("analyst") as owner:
        grants = owner.get("/v1/grants").json()["items"]
        (grant,) = [g for g in grants if g["status"] == "active" and "job" in g["methods"]
                    and len(g["assets"]) == 2 and not g.get("quotas")]  # fmt: skip
        code = f'while True:\n    sql("{SLOW_JOIN}")\n'
        job_id = owner.post("/v1/jobs", json={"code": code, "grant_id": grant["id"]}).json()["id"]
    (run,) = [e for e in _runs_written(held, [job_id])[job_id] if e["type"] == "job_run"]
    queries = [r for r in run["records"] if r["type"] == "query"]
    assert queries and queries[-1]["outcome"] == "cancelled"

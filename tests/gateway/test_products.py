"""Data product descriptions over HTTP: a developer files a product on its organisation's
receipts of released queries and jobs; its organisation, the providers of its sources and
overseers read it, no one else; every refusal names its field, and a receipt of another
organisation is refused exactly as one that does not exist. Filing and withdrawal are ledger
entries committing to the product's content, and the ledger still verifies."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator

import httpx
import pytest

from ledger import canonical_json
from tests.gateway.test_jobs import BY_DISTRICT, run
from tests.gateway.test_postgres import database_url  # noqa: F401 - a fixture
from tests.support import Server, start_server, stop_server

ORG = "Provincial Public Health Institute"  # the analyst's, in the demo
VISITS = (
    "SELECT district, COUNT(DISTINCT patient_id) AS patients FROM hospital.visits GROUP BY district"
)
JOINED = (
    "SELECT v.district, COUNT(DISTINCT v.patient_id) AS patients FROM hospital.visits v "
    "JOIN insurance.claims c ON v.patient_id = c.patient_id GROUP BY v.district"
)
CLAIMS = "SELECT plan, COUNT(*) AS n FROM insurance.claims GROUP BY plan"
CONTENT = ("id", "developer", "org", "name", "description", "scope", "date", "sources",
           "receipts", "filed_at")  # fmt: skip


@pytest.fixture(scope="module")
def colleague(demo: Server) -> Iterator[str]:
    """A second developer of the analyst's organisation, with no grant of its own."""
    who = f"colleague-{uuid.uuid4().hex[:8]}"
    with demo.client("admin") as admin:
        made = admin.post("/v1/principals", json={"id": who, "roles": ["developer"], "org": ORG})
    assert made.status_code == 201, made.json()
    demo.keys[who] = made.json()["api_key"]
    yield who


def _receipt(server: Server, sql: str, who: str = "analyst") -> dict:
    answered = server.query(sql, who)
    assert answered.status_code == 200, answered.json()
    return answered.json()["receipt"]


def _body(receipts: list[dict], sources: list[dict], **fields: object) -> dict:
    return {
        "name": "Chronic disease burden by district",
        "description": "Patients per district, 按区统计",
        "scope": "Fuzhou districts, outpatient visits of 2026",
        "date": "2026-12-01",
        "sources": sources,
        "receipts": receipts,
        **fields,
    }


def _visits(version: int = 1) -> list[dict]:
    return [{"asset": "hospital.visits", "version": version}]


def _file(server: Server, body: dict, who: str = "analyst") -> httpx.Response:
    with server.client(who) as client:
        return client.post("/v1/products", json=body)


def _filed(server: Server, body: dict, who: str = "analyst") -> dict:
    filed = _file(server, body, who)
    assert filed.status_code == 201, filed.json()
    return filed.json()


def _listed(server: Server, who: str) -> set[str]:
    with server.client(who) as client:
        listed = client.get("/v1/products")
    assert listed.status_code == 200, listed.json()
    return {item["id"] for item in listed.json()["items"]}


def _read(server: Server, who: str, product_id: str) -> httpx.Response:
    with server.client(who) as client:
        return client.get(f"/v1/products/{product_id}")


def _rules(response: httpx.Response) -> tuple[int, str, list[tuple[str, str | None]]]:
    error = response.json()["error"]
    return (
        response.status_code,
        error["code"],
        [(v["rule"], v.get("column")) for v in error["violations"]],
    )


def _entries(server: Server, who: str) -> list[dict]:
    """Every entry `who` may read, with its index, leaf hash and parsed data."""
    items: list[dict] = []
    with server.client(who) as client:
        while page := client.get(
            "/v1/ledger/entries",
            params={"limit": 1000, **({"after": items[-1]["index"]} if items else {})},
        ).json()["items"]:
            items += page
    return [dict(item, data=json.loads(item["data"])) for item in items]


def _as_receipt(entry: dict) -> dict:
    return {"ledger_index": entry["index"], "leaf_hash": entry["leaf_hash"]}


def _digest(product: dict) -> str:
    content = {key: product[key] for key in CONTENT}
    return hashlib.sha256(canonical_json(content).encode()).hexdigest()


def _products_filed(server: Server) -> int:
    return sum(entry.get("type") == "product_filed" for entry in server.ledger())


def _verify(server: Server) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "ledger", "verify", "--home", str(server.home)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_a_filed_product_is_read_by_its_organisation_its_providers_and_overseers(
    demo: Server, colleague: str
) -> None:
    receipts = [_receipt(demo, VISITS), _receipt(demo, VISITS.replace("district", "sex"))]
    product = _filed(demo, _body(receipts, _visits()))
    assert product["status"] == "filed" and product["withdrawn"] is None
    assert (product["developer"], product["org"]) == ("analyst", ORG)
    assert product["receipts"] == receipts
    assert product["sources"] == _visits()
    assert product["id"].startswith("p_")

    for reader in ("analyst", colleague, "city-hospital", "supervisor", "operator"):
        assert product["id"] in _listed(demo, reader), reader
        shown = _read(demo, reader, product["id"])
        assert shown.status_code == 200, (reader, shown.json())
        assert shown.json() == product
    # The provider of an unrelated asset and another organisation's developer see nothing of
    # it: its id answers as an id that was never filed.
    never = f"p_{uuid.uuid4().hex}"
    for outsider in ("insurer", "fintech"):
        assert product["id"] not in _listed(demo, outsider), outsider
        hidden, missing = _read(demo, outsider, product["id"]), _read(demo, outsider, never)
        assert hidden.status_code == missing.status_code == 404
        assert hidden.json() == missing.json()
    with demo.client("admin") as admin:
        assert admin.get("/v1/products").status_code == 403


def test_filing_and_withdrawal_are_ledger_entries_committing_to_the_content(
    demo: Server, colleague: str
) -> None:
    receipt = _receipt(demo, JOINED)
    sources = [*_visits(), {"asset": "insurance.claims", "version": 1}]
    product = _filed(demo, _body([receipt], sources, name="Joined burden"))
    assert product["content_sha256"] == _digest(product)
    entries = {entry["index"]: entry for entry in _entries(demo, "supervisor")}
    filed = entries[product["filed"]["ledger_index"]]
    assert filed["leaf_hash"] == product["filed"]["leaf_hash"]
    assert filed["data"]["type"] == "product_filed"
    assert filed["data"]["product_id"] == product["id"]
    assert filed["data"]["content_sha256"] == _digest(product)
    assert filed["data"]["assets"] == ["hospital.visits", "insurance.claims"]
    # Both providers are parties to the entry, so each reads it.
    for provider in ("city-hospital", "insurer"):
        assert filed["index"] in {e["index"] for e in _entries(demo, provider)}, provider

    # Only the developer who filed it withdraws it: not a colleague, not a provider.
    with demo.client(colleague) as client:
        refused = client.post(f"/v1/products/{product['id']}/withdraw", json={})
    assert _rules(refused) == (403, "POLICY_DENIED", [("not_product_developer", None)])
    with demo.client("city-hospital") as client:
        refused = client.post(f"/v1/products/{product['id']}/withdraw", json={})
    assert refused.status_code == 403
    with demo.client("analyst") as client:
        withdrawn = client.post(
            f"/v1/products/{product['id']}/withdraw", json={"reason": "superseded"}
        )
        assert withdrawn.status_code == 200, withdrawn.json()
        again = client.post(f"/v1/products/{product['id']}/withdraw")
    assert _rules(again)[:2] == (409, "CONFLICT")
    shown = withdrawn.json()
    assert shown["status"] == "withdrawn"
    assert shown["withdrawn"]["by"] == "analyst" and shown["withdrawn"]["reason"] == "superseded"
    # What was filed, and its hash, stand unchanged.
    assert {key: shown[key] for key in CONTENT} == {key: product[key] for key in CONTENT}
    assert _digest(shown) == product["content_sha256"]
    entry = {e["index"]: e for e in _entries(demo, "insurer")}[
        shown["withdrawn"]["receipt"]["ledger_index"]
    ]
    assert entry["leaf_hash"] == shown["withdrawn"]["receipt"]["leaf_hash"]
    assert entry["data"]["type"] == "product_withdrawn"
    assert entry["data"]["content_sha256"] == product["content_sha256"]
    assert _read(demo, "city-hospital", product["id"]).json() == shown

    verified = _verify(demo)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_colleague_files_on_its_organisations_receipts(demo: Server, colleague: str) -> None:
    product = _filed(demo, _body([_receipt(demo, VISITS)], _visits()), colleague)
    assert (product["developer"], product["org"]) == (colleague, ORG)
    assert product["id"] in _listed(demo, "analyst")


def test_another_organisations_receipt_is_refused_as_one_that_does_not_exist(
    demo: Server,
) -> None:
    theirs = _receipt(demo, CLAIMS, "fintech")
    mine = _receipt(demo, VISITS)
    claims = [{"asset": "insurance.claims", "version": 1}]
    other = _file(demo, _body([theirs], claims))
    nowhere = _file(demo, _body([{"ledger_index": 10**12, "leaf_hash": "0" * 64}], claims))
    wrong_hash = _file(demo, _body([dict(mine, leaf_hash="f" * 64)], claims))
    # The other organisation's entry, with its true leaf hash, answers as no entry at all.
    assert other.json() == nowhere.json() == wrong_hash.json()
    assert _rules(other) == (422, "RECEIPT_REFUSED", [("receipt_unknown", "receipts[0]")])
    # And beside a good receipt, it is named by its place alone.
    mixed = _file(demo, _body([mine, theirs], _visits()))
    assert _rules(mixed) == (422, "RECEIPT_REFUSED", [("receipt_unknown", "receipts[1]")])
    assert "insurance.claims" not in mixed.text and "fintech" not in mixed.text


def test_receipts_of_refused_queries_and_of_other_entries_are_refused(demo: Server) -> None:
    rejected = demo.query("SELECT patient_name FROM hospital.visits")
    assert rejected.status_code == 422
    with demo.client("supervisor") as client:
        theirs = next(g["id"] for g in client.get("/v1/grants").json()["items"]
                      if g["developer"] == "fintech")  # fmt: skip
    denied = demo.query(CLAIMS, grant_id=theirs)
    assert denied.status_code == 403, denied.json()
    mine = _entries(demo, "analyst")
    queries = [e for e in mine if e["data"].get("type") == "query"]
    last = {outcome: next(e for e in reversed(queries) if e["data"].get("outcome") == outcome)
            for outcome in ("rejected", "denied")}  # fmt: skip
    granted = next(e for e in mine if e["data"].get("type") == "grant_requested")
    for receipt, rule in (
        (last["rejected"], "receipt_not_released"),
        (last["denied"], "receipt_not_released"),
        # Not the org's query or job at all: answered as unknown, like any other such entry.
        (granted, "receipt_unknown"),
    ):
        refused = _file(demo, _body([_as_receipt(receipt)], _visits()))
        assert _rules(refused) == (422, "RECEIPT_REFUSED", [(rule, "receipts[0]")]), receipt


def test_sources_must_be_exactly_what_the_receipts_read(demo: Server) -> None:
    visits = _receipt(demo, VISITS)
    joined = _receipt(demo, JOINED)
    claims = {"asset": "insurance.claims", "version": 1}
    not_read = _file(demo, _body([visits], [*_visits(), claims]))
    assert _rules(not_read) == (422, "SOURCE_REFUSED", [("source_not_read", "sources[1]")])
    missing = _file(demo, _body([joined], _visits()))
    assert _rules(missing) == (422, "SOURCE_REFUSED", [("source_missing", "sources")])
    assert missing.json()["error"]["violations"][0]["table"] == "insurance.claims"
    never_had = _file(demo, _body([visits], _visits(version=7)))
    assert _rules(never_had) == (422, "SOURCE_REFUSED", [("source_version", "sources[0]")])
    unknown = _file(demo, _body([visits], [{"asset": "nowhere.at_all", "version": 1}]))
    assert _rules(unknown)[2] == [("source_not_read", "sources[0]"), ("source_missing", "sources")]


def test_a_malformed_or_oversized_description_is_refused_field_by_field(demo: Server) -> None:
    receipt = _receipt(demo, VISITS)
    filed_before = _products_filed(demo)
    twice = _file(demo, _body([receipt, receipt], _visits()))
    assert _rules(twice) == (422, "INVALID_PRODUCT", [("duplicate_receipt", "receipts[1]")])
    doubled = _file(demo, _body([receipt], [*_visits(), *_visits()]))
    assert _rules(doubled) == (422, "INVALID_PRODUCT", [("duplicate_source", "sources[1]")])
    fields = _file(demo, _body([], [], name="  ", date="2026-02-30", scope="a\x00b"))
    assert _rules(fields) == (422, "INVALID_PRODUCT", [
        ("product_field", "name"), ("product_field", "scope"), ("product_field", "date"),
        ("product_field", "receipts"), ("product_field", "sources"),
    ])  # fmt: skip
    # A list past its bound is refused before anything is read.
    many = [{"ledger_index": n, "leaf_hash": "0" * 64} for n in range(5000)]
    huge = _file(demo, _body(many, _visits()))
    assert _rules(huge) == (422, "BAD_REQUEST", [("invalid_field", "receipts")])
    for who in ("city-hospital", "supervisor", "operator", "admin"):
        refused = _file(demo, _body([receipt], _visits()), who)
        assert _rules(refused) == (403, "POLICY_DENIED", [("role_not_permitted", None)]), who
    # Nothing refused was filed, nor recorded as filed.
    assert _products_filed(demo) == filed_before


def test_a_job_rests_a_product_once_its_outputs_were_released(demo: Server) -> None:
    released = run(demo, BY_DISTRICT)
    assert released["status"] == "succeeded", released
    refused = run(demo, 'sql("SELECT district, COUNT(*) FROM hospital.visits GROUP BY district")\n'
                        'publish("t", ["district", "n"], [["P000042", 50]])')  # fmt: skip
    assert refused["status"] == "rejected", refused
    mine = _entries(demo, "analyst")

    def entry(job_id: str, kind: str) -> dict:
        return next(e for e in mine if e["data"].get("job_id") == job_id
                    and e["data"]["type"] == kind)  # fmt: skip

    product = _filed(demo, _body([_as_receipt(entry(released["id"], "job"))], _visits()))
    assert product["receipts"][0]["ledger_index"] == entry(released["id"], "job")["index"]
    # A job whose outputs the gate refused released nothing, though it ran; and a job's own
    # query answered the job, not its developer.
    for receipt in (entry(refused["id"], "job"), entry(released["id"], "query")):
        rejected = _file(demo, _body([_as_receipt(receipt)], _visits()))
        assert _rules(rejected) == (422, "RECEIPT_REFUSED",
                                    [("receipt_not_released", "receipts[0]")])  # fmt: skip


def test_only_its_developer_withdraws_a_product_in_either_engine(each_engine: Server) -> None:
    server = each_engine
    who = f"colleague-{uuid.uuid4().hex[:8]}"
    with server.client("admin") as admin:
        made = admin.post("/v1/principals", json={"id": who, "roles": ["developer"], "org": ORG})
    assert made.status_code == 201, made.json()
    server.keys[who] = made.json()["api_key"]
    product = _filed(server, _body([_receipt(server, VISITS)], _visits()))
    path = f"/v1/products/{product['id']}/withdraw"
    for other, rule in ((who, "not_product_developer"), ("supervisor", "role_not_permitted")):
        with server.client(other) as client:
            refused = client.post(path)
        assert refused.status_code == 403, (other, refused.json())
        assert rule in [v["rule"] for v in refused.json()["error"]["violations"]], other
    assert _read(server, who, product["id"]).json()["status"] == "filed"
    with server.client("analyst") as client:
        assert client.post(path).json()["status"] == "withdrawn"


def test_filing_and_withdrawal_on_postgres(tmp_path, database_url) -> None:  # noqa: F811
    server = start_server(tmp_path / "home", env={"VEIL_DATABASE_URL": database_url})
    try:
        product = _filed(server, _body([_receipt(server, VISITS)], _visits()))
        assert _read(server, "city-hospital", product["id"]).json() == product
        assert product["id"] not in _listed(server, "insurer")
        with server.client("analyst") as client:
            withdrawn = client.post(f"/v1/products/{product['id']}/withdraw")
        assert withdrawn.status_code == 200, withdrawn.json()
        entries = {e["index"]: e["data"] for e in _entries(server, "supervisor")}
        assert entries[product["filed"]["ledger_index"]]["content_sha256"] == _digest(product)
        landed = withdrawn.json()["withdrawn"]["receipt"]["ledger_index"]
        assert entries[landed]["type"] == "product_withdrawn"
        verified = _verify(server)
        assert verified.returncode == 0, verified.stdout + verified.stderr
    finally:
        stop_server(server)

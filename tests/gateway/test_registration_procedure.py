"""The registration procedure over HTTP, walked as the policy documents define it: an asset in
the memo book, applied for with its documents, reviewed twice, publicised, objected to,
registered with a certificate anyone verifies offline, granted, changed and cancelled; every
step a ledger entry, and no grant before registration."""

from __future__ import annotations

import io
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import VEIL, Server, start_server, stop_server

ROOT = Path(__file__).resolve().parents[2]
CARD = {
    "id": "city.parks",
    "title": "Park visits",
    "provider": "city-hospital",
    "classification": "L2",
    "domain": "civil",
    "rights": {"holder": "city-hospital", "personal_data": False},
    "columns": [
        {"name": "visitor", "type": "VARCHAR", "role": "privacy_unit"},
        {"name": "park", "type": "VARCHAR", "role": "dimension", "domain": ["p0", "p1", "p2"]},
    ],
    "revenue_shares_bp": {"city-hospital": 10000},
}
OPINION = b"%PDF-1.7 compliance legal opinion: lawful source, consent on file"
VALUATION = b"%PDF-1.7 valuation report: cost method, 120000 CNY"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(
        tmp_path_factory.mktemp("registration") / "home", env={"VEIL_NOTICE_PERIOD_S": "0"}
    )
    yield running
    stop_server(running)


def _post(server: Server, who: str, path: str, **kwargs: object) -> httpx.Response:
    with server.client(who) as client:
        return client.post(path, **kwargs)


def _get(server: Server, who: str | None, path: str, **kwargs: object) -> httpx.Response:
    with server.client(who) as client:
        return client.get(path, **kwargs)


def _upload(server: Server, card: dict) -> None:
    data = "visitor,park\n" + "".join(f"v{i},p{i % 3}\n" for i in range(60))
    answer = _post(server, "city-hospital", "/v1/assets", data={"card": json.dumps(card)},
                   files={"file": ("parks.csv", io.BytesIO(data.encode()), "text/csv")})  # fmt: skip
    assert answer.status_code == 201, answer.text


def _step(server: Server, who: str, registration: str, step: str, **body: object) -> dict:
    answer = _post(server, who, f"/v1/registrations/{registration}/{step}", json=body or None)
    assert answer.status_code == 200, (step, answer.text)
    return answer.json()


def _attach(server: Server, registration: str, kind: str, content: bytes) -> httpx.Response:
    return _post(server, "city-hospital", f"/v1/registrations/{registration}/attachments",
                 data={"kind": kind}, files={"file": (f"{kind}.pdf", io.BytesIO(content))})  # fmt: skip


def _walk(server: Server, asset: str, kind: str) -> dict:
    """Open, document, review twice, publish and register a registration of `kind`."""
    opened = _post(server, "city-hospital", "/v1/registrations", json={"asset": asset,
                                                                      "kind": kind})  # fmt: skip
    assert opened.status_code == 201, opened.text
    registration = opened.json()["id"]
    if kind in ("first", "change"):
        for document, content in (("legal_opinion", OPINION), ("valuation_report", VALUATION)):
            assert _attach(server, registration, document, content).status_code == 201
    _step(server, "city-hospital", registration, "apply")
    _step(server, "operator", registration, "review")
    _step(server, "supervisor", registration, "re_review")
    _step(server, "operator", registration, "publish")
    return _step(server, "supervisor", registration, "register")


def _grant(server: Server, asset: str) -> httpx.Response:
    return _post(server, "analyst", "/v1/grants", json={
        "assets": [asset], "purpose": "public_welfare", "scenario": "parks",
        "methods": ["sql"], "valid_until": "2030-01-01T00:00:00Z",
    })  # fmt: skip


def _verify(certificate: str, public_key: str, tmp_path: Path) -> subprocess.CompletedProcess:
    path = tmp_path / "certificate.txt"
    path.write_text(certificate, encoding="utf-8")
    return subprocess.run(
        [*VEIL, "certificates", "verify", str(path), "--public-key", public_key],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_the_whole_procedure(server: Server, tmp_path: Path) -> None:
    _upload(server, CARD)
    opened = _post(server, "city-hospital", "/v1/registrations", json={"asset": "city.parks"})
    assert opened.status_code == 201, opened.text
    registration = opened.json()["id"]
    assert opened.json()["state"] == "draft"

    # In the memo book the asset serves no grant: requested, it is refused by the policy.
    refused = _grant(server, "city.parks")
    assert refused.status_code == 403
    assert refused.json()["error"]["violations"] == [{"rule": "asset_inactive"}]

    # No application without the compliance opinion and the valuation report.
    early = _post(server, "city-hospital", f"/v1/registrations/{registration}/apply")
    assert early.status_code == 409
    assert early.json()["error"]["violations"] == [{"rule": "attachment_missing"}]
    filed = [_attach(server, registration, kind, content).json()
             for kind, content in (("legal_opinion", OPINION), ("valuation_report", VALUATION))]  # fmt: skip
    hashes = {a["kind"]: a["sha256"] for a in filed[-1]["attachments"]}
    applied = _step(server, "city-hospital", registration, "apply")
    assert applied["state"] == "applied"

    # Each review is its role's: a developer, the holder or the wrong overseer is refused.
    for who, step in (("analyst", "review"), ("city-hospital", "review"),
                      ("supervisor", "review"), ("operator", "re_review")):  # fmt: skip
        answer = _post(server, who, f"/v1/registrations/{registration}/{step}")
        assert answer.status_code in (403, 404), (who, step, answer.text)
    assert _step(server, "operator", registration, "review")["state"] == "initially_reviewed"
    assert _step(server, "supervisor", registration, "re_review")["state"] == "re_reviewed"
    published = _step(server, "operator", registration, "publish")
    assert published["state"] == "under_notice" and published["notice_until"]

    # The notice is public: on the disclosure report, without a key; a developer sees it, and
    # objects.
    public = _get(server, None, "/v1/disclosure").json()["notices"]
    assert [(n["asset"], n["objections"]) for n in public if n["registration"] == registration] == [
        ("city.parks", 0)
    ]
    notices = _get(server, "analyst", "/v1/registrations").json()["items"]
    assert [n["state"] for n in notices if n["id"] == registration] == ["under_notice"]
    _step(server, "analyst", registration, "object", note="the park list is incomplete")
    blocked = _post(server, "supervisor", f"/v1/registrations/{registration}/register")
    assert blocked.status_code == 409
    assert blocked.json()["error"]["violations"] == [{"rule": "objection_open"}]
    _step(server, "supervisor", registration, "resolve", upheld=False, note="list is complete")
    registered = _step(server, "supervisor", registration, "register")
    assert registered["state"] == "registered"
    assert registered["registration_code"].startswith("VEIL-")

    # The certificate verifies offline with the ledger's public key, and names its entry.
    key = _get(server, None, "/v1/ledger/public-key").json()
    checked = _verify(registered["certificate"], key["public_key"], tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    body = json.loads(checked.stdout)["certificate"]
    assert body["asset"] == "city.parks" and body["holder"] == "city-hospital"
    assert body["registration_code"] == registered["registration_code"]
    entries = server.ledger()
    assert entries[body["ledger"]["index"]]["type"] == "registration_register"
    assert entries[body["ledger"]["index"]]["registration"] == registration

    # Every step is a ledger entry, in order; the documents' hashes are committed there.
    steps = [e for e in entries if e.get("registration") == registration]
    assert [e["type"] for e in steps] == [
        "registration_open", "registration_attach", "registration_attach",
        "registration_apply", "registration_review", "registration_re_review",
        "registration_publish", "registration_object", "registration_resolve",
        "registration_register",
    ]  # fmt: skip
    applied_entry = steps[3]
    assert {a["kind"]: a["sha256"] for a in applied_entry["attachments"]} == hashes

    # Registered, the asset is granted and answers.
    asked = _grant(server, "city.parks")
    assert asked.status_code == 201, asked.text
    server.approve(asked.json()["id"], "city-hospital", "supervisor")
    answer = server.query("SELECT park, COUNT(*) AS n FROM city.parks GROUP BY park")
    assert answer.status_code == 200, answer.text
    assert sorted(row[0] for row in answer.json()["rows"]) == ["p0", "p1", "p2"]


def test_a_tampered_or_foreign_certificate_fails_offline(server: Server, tmp_path: Path) -> None:
    _upload(server, dict(CARD, id="city.tampered"))
    registered = _walk(server, "city.tampered", "first")
    key = _get(server, None, "/v1/ledger/public-key").json()["public_key"]
    forged = registered["certificate"].replace('"holder":"city-hospital"', '"holder":"insurer"')
    assert forged != registered["certificate"]
    assert _verify(forged, key, tmp_path).returncode == 1
    # A note the ledger signed that is not a certificate (its checkpoint) is not one.
    checkpoint = _get(server, None, "/v1/ledger/checkpoint").json()["note"]
    assert _verify(checkpoint, key, tmp_path).returncode == 1
    # Nor does any other key's signature count.
    other_key = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
    assert _verify(registered["certificate"], other_key, tmp_path).returncode == 1


def test_documents_are_encrypted_and_read_only_by_the_parties(server: Server) -> None:
    _upload(server, dict(CARD, id="city.documents"))
    opened = _post(server, "city-hospital", "/v1/registrations", json={"asset": "city.documents"})
    registration = opened.json()["id"]
    digest = _attach(server, registration, "legal_opinion", OPINION).json()["attachments"][0]
    stored = (server.home / "attachments" / registration / digest["sha256"]).read_bytes()
    assert OPINION not in stored and b"legal opinion" not in stored
    path = f"/v1/registrations/{registration}/attachments/{digest['sha256']}"
    for who in ("city-hospital", "operator", "supervisor"):
        read = _get(server, who, path)
        assert read.status_code == 200 and read.content == OPINION, who
    # Another provider and a developer learn nothing, not even that the draft exists.
    for who in ("insurer", "analyst"):
        assert _get(server, who, path).status_code == 404, who
        assert _get(server, who, f"/v1/registrations/{registration}").status_code == 404, who
        step = _post(server, who, f"/v1/registrations/{registration}/apply")
        assert step.status_code in (403, 404), who


def test_change_then_cancellation_supersede_and_cancel_the_certificate(server: Server) -> None:
    _upload(server, dict(CARD, id="city.changing"))
    first = _walk(server, "city.changing", "first")
    asked = _grant(server, "city.changing")
    assert asked.status_code == 201, asked.text
    server.approve(asked.json()["id"], "city-hospital", "supervisor")
    changed = _walk(server, "city.changing", "change")
    status = _get(server, None, f"/v1/certificates/{first['registration_code']}").json()
    assert status["status"] == "superseded"
    assert (
        _get(server, None, f"/v1/certificates/{changed['registration_code']}").json()["status"]
        == "valid"
    )
    # A change leaves the asset registered: it still answers.
    sql = "SELECT park, COUNT(*) AS n FROM city.changing GROUP BY park"
    assert server.query(sql).status_code == 200

    cancelled = _walk(server, "city.changing", "cancellation")
    assert cancelled["state"] == "registered"
    status = _get(server, None, f"/v1/certificates/{changed['registration_code']}").json()
    assert status["status"] == "cancelled"
    # Cancelled, the asset serves nothing: its grant ended, and a new one is refused.
    refused = server.query(sql)
    assert refused.status_code == 403, refused.text
    with server.client("analyst") as client:
        grant = client.get(f"/v1/grants/{asked.json()['id']}").json()
    assert grant["status"] == "revoked"
    assert _grant(server, "city.changing").status_code == 403


def test_a_registration_cannot_be_opened_twice_or_out_of_turn(server: Server) -> None:
    _upload(server, dict(CARD, id="city.twice"))
    assert _post(server, "city-hospital", "/v1/registrations",
                 json={"asset": "city.twice", "kind": "change"}).status_code == 409  # fmt: skip
    first = _post(server, "city-hospital", "/v1/registrations", json={"asset": "city.twice"})
    assert first.status_code == 201
    again = _post(server, "city-hospital", "/v1/registrations", json={"asset": "city.twice"})
    assert again.status_code == 409
    # Steps out of order are refused by the transition function, whoever asks.
    registration = first.json()["id"]
    for who, step in (("supervisor", "register"), ("operator", "publish"),
                      ("supervisor", "re_review")):  # fmt: skip
        answer = _post(server, who, f"/v1/registrations/{registration}/{step}")
        assert answer.status_code == 409, (step, answer.text)
        assert answer.json()["error"]["violations"] == [{"rule": "step_not_allowed"}]
    # Another provider cannot open a registration of someone else's asset.
    foreign = _post(server, "insurer", "/v1/registrations", json={"asset": "city.twice"})
    assert foreign.status_code == 403
    assert foreign.json()["error"]["violations"] == [{"rule": "not_asset_holder"}]


def test_the_demo_starts_registered_with_certificates(demo: Server, tmp_path: Path) -> None:
    """`veil demo` walks its assets through the procedure, each step by its role."""
    shown = _get(demo, "analyst", "/v1/registrations").json()["items"]
    registered = {r["asset"]: r for r in shown if r["state"] == "registered"}
    assert set(registered) == {"hospital.visits", "insurance.claims"}
    key = _get(demo, None, "/v1/ledger/public-key").json()["public_key"]
    for asset, registration in registered.items():
        checked = _verify(registration["certificate"], key, tmp_path)
        assert checked.returncode == 0, checked.stdout
        assert json.loads(checked.stdout)["certificate"]["asset"] == asset
        standing = _get(demo, None, f"/v1/certificates/{registration['registration_code']}")
        assert standing.json()["status"] == "valid"
    steps = [e["type"] for e in demo.ledger() if e.get("asset") == "hospital.visits"]
    assert [s for s in steps if s.startswith("registration_")] == [
        "registration_open", "registration_attach", "registration_attach",
        "registration_apply", "registration_review", "registration_re_review",
        "registration_publish", "registration_register",
    ]  # fmt: skip

"""Authentication, roles and grants, over HTTP, with the one error body."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.gateway.test_metrics import sample

SQL = "SELECT district, COUNT(*) AS n FROM hospital.visits GROUP BY district"
PATIENCE_S = 60


def _error(response: httpx.Response) -> dict:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "violations"}
    return body["error"]


def test_missing_and_bad_keys_are_unauthenticated(demo) -> None:
    with httpx.Client(base_url=demo.url) as client:
        for headers in (
            {},
            {"Authorization": "Bearer nope"},
            {"Authorization": "Basic abc"},
            {"Authorization": "Bearer " + "x" * 5000},
        ):
            response = client.post("/v1/queries", json={"sql": SQL}, headers=headers)
            assert response.status_code == 401
            assert _error(response)["code"] == "UNAUTHENTICATED"
            assert response.headers["www-authenticate"] == "Bearer"


def test_roles_are_enforced(demo) -> None:
    with demo.client("city-hospital") as provider:
        response = provider.post("/v1/queries", json={"sql": SQL})
        assert response.status_code == 403 and _error(response)["code"] == "POLICY_DENIED"
        assert {"rule": "not_a_developer"} in _error(response)["violations"]
    with demo.client("analyst") as developer:
        response = developer.post(
            "/v1/principals", json={"id": "x1", "roles": ["admin"], "org": "x"}
        )
        assert response.status_code == 403


def test_ungranted_asset_is_denied_by_policy(demo) -> None:
    response = demo.query(SQL, who="fintech")
    error = _error(response)
    assert response.status_code == 403 and error["code"] == "POLICY_DENIED"
    assert error["violations"]


def test_purpose_must_match_the_grant(demo) -> None:
    response = demo.query(SQL, purpose="commercial_pricing")
    assert response.status_code == 403
    assert _error(response)["code"] == "POLICY_DENIED"


def test_unknown_grant_is_denied(demo) -> None:
    response = demo.query(SQL, grant_id="g_doesnotexist")
    assert response.status_code == 403


def test_pending_and_revoked_grants_do_not_authorise(each_engine) -> None:
    """Grants reach either engine in the input, so every change counts on the next request."""
    demo = each_engine
    with demo.client("admin") as admin:
        created = admin.post(
            "/v1/principals", json={"id": "newdev", "roles": ["developer"], "org": "Lab"}
        ).json()
    demo.keys["newdev"] = created["api_key"]
    with demo.client("newdev") as dev:
        grant = dev.post(
            "/v1/grants",
            json={
                "assets": ["insurance.claims"],
                "purpose": "public_governance",
                "scenario": "fraud oversight",
                "methods": ["sql"],
                "valid_until": "2030-01-01T00:00:00Z",
            },
        ).json()
    assert grant["status"] == "pending"
    sql = "SELECT plan, COUNT(*) AS n FROM insurance.claims GROUP BY plan"
    assert demo.query(sql, who="newdev").status_code == 403
    with demo.client("insurer") as insurer:
        assert insurer.post(f"/v1/grants/{grant['id']}/approve").json()["status"] == "pending"
    with demo.client("city-hospital") as other:
        assert other.post(f"/v1/grants/{grant['id']}/approve").status_code == 403
    with demo.client("supervisor") as supervisor:
        assert supervisor.post(f"/v1/grants/{grant['id']}/approve").json()["status"] == "active"
    assert demo.query(sql, who="newdev").status_code == 200
    with demo.client("insurer") as insurer:
        assert insurer.post(f"/v1/grants/{grant['id']}/revoke").json()["status"] == "revoked"
    assert demo.query(sql, who="newdev").status_code == 403


def test_bad_bodies_get_stable_errors(demo) -> None:
    with demo.client("analyst") as client:
        for body in (
            {},
            {"sql": 5},
            {"sql": SQL, "extra": 1},
            {"sql": SQL, "purpose": "Bad Purpose"},
        ):
            response = client.post("/v1/queries", json=body)
            assert response.status_code == 422
            assert _error(response)["code"] == "BAD_REQUEST"
        response = client.post(
            "/v1/queries", content=b"not json", headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 422


def test_unknown_route_and_method(demo) -> None:
    with demo.client("analyst") as client:
        assert _error(client.get("/v1/nothing"))["code"] == "NOT_FOUND"
        assert client.put("/v1/queries").status_code == 405


def test_health_metrics_and_openapi(demo) -> None:
    with httpx.Client(base_url=demo.url) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").status_code == 200
        metrics = demo.metrics()
        assert "veil_http_requests_total" in metrics
        assert 'route="/v1/queries"' in metrics
        assert "veil_http_request_duration_seconds_bucket" in metrics
        assert "veil_queries_total" in metrics
        paths = client.get("/openapi.json").json()["paths"]
        assert "/v1/queries" in paths and "/v1/ledger/entries" in paths


def test_catalogue_shows_cards_never_data(demo) -> None:
    with demo.client("fintech") as client:
        items = client.get("/v1/assets").json()["items"]
        assert {item["id"] for item in items} >= {"hospital.visits", "insurance.claims"}
        card = client.get("/v1/assets/hospital.visits").json()
        assert card["row_count"] == 30000
        assert "P000042" not in client.get("/v1/assets").text
        assert client.get("/v1/assets/nope.none").status_code == 404


def _declare_huge_upload(demo, headers: bytes) -> str:
    """Send only the head of a 100 GB upload; the reply must come without the body."""
    import socket
    from urllib.parse import urlparse

    url = urlparse(demo.url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as raw:
        raw.sendall(
            b"POST /v1/assets HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data\r\n"
            + headers
            + b"Content-Length: 99999999999\r\n\r\n"
        )
        reply = b""
        while b"\r\n0\r\n" not in reply and b"}" not in reply and (chunk := raw.recv(4096)):
            reply += chunk
        return reply.decode()


def test_oversized_bodies_are_refused_unread(demo) -> None:
    key = demo.keys["city-hospital"].encode()
    reply = _declare_huge_upload(demo, b"Authorization: Bearer " + key + b"\r\n")
    assert reply.startswith("HTTP/1.1 413")
    assert "PAYLOAD_TOO_LARGE" in reply


@pytest.mark.parametrize("headers", [b"", b"Authorization: Bearer x\r\n",
                                     b"Authorization: Basic eDp4\r\n"])  # fmt: skip
def test_bodies_without_a_valid_key_are_refused_unread(demo, headers: bytes) -> None:
    """A key is checked before any body is read, not merely looked for: an invented one
    cannot make the server take in a large upload."""
    reply = _declare_huge_upload(demo, headers)
    assert reply.startswith("HTTP/1.1 401")
    assert "UNAUTHENTICATED" in reply


def test_one_developers_concurrent_queries_wait_their_turn_and_are_all_answered(demo) -> None:
    """Eight clients of one developer query at once, with the default limits: those finding no
    free slot wait in the query queue instead of being refused, and every one is answered."""
    clients = 8
    waited = "veil_query_queue_wait_seconds_count"
    before = sample(demo.metrics(), waited)
    together = threading.Barrier(clients)

    def ask(_: int) -> httpx.Response:
        together.wait(PATIENCE_S)
        return demo.query(SQL)

    with ThreadPoolExecutor(clients) as pool:
        answers = list(pool.map(ask, range(clients)))
    assert [answer.status_code for answer in answers] == [200] * clients
    scraped = demo.metrics()
    assert sample(scraped, waited) - before == clients  # each went through the queue
    assert sample(scraped, "veil_query_queue_waiting") == 0


def _raw_exchange(demo, head: bytes, body_chunks: int) -> str:
    import socket
    from urllib.parse import urlparse

    url = urlparse(demo.url)
    with socket.create_connection((url.hostname, url.port), timeout=20) as raw:
        raw.sendall(head)
        try:
            for _ in range(body_chunks):
                raw.sendall(b"100000\r\n" + b"x" * 0x100000 + b"\r\n")
        except OSError:
            pass  # the server may close as soon as it has refused
        reply = b""
        while b"}}" not in reply and (chunk := raw.recv(4096)):
            reply += chunk
    return reply.decode(errors="replace")


def test_anonymous_bodies_are_refused_before_reading(demo) -> None:
    head = b"POST /v1/queries HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    reply = _raw_exchange(demo, head, body_chunks=3)
    assert reply.startswith("HTTP/1.1 401") and "UNAUTHENTICATED" in reply


def test_chunked_bodies_are_counted(demo) -> None:
    head = (
        b"POST /v1/queries HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Authorization: Bearer " + demo.keys["analyst"].encode() + b"\r\n\r\n"
    )
    reply = _raw_exchange(demo, head, body_chunks=3)
    assert reply.startswith("HTTP/1.1 413") and "PAYLOAD_TOO_LARGE" in reply


def test_grant_dates_outside_the_supported_years_are_refused(demo) -> None:
    with demo.client("analyst") as client:
        for moment in (
            "9999-12-31T23:59:59-14:00",
            "0001-01-01T00:00:00+14:00",
            "2300-01-01T00:00:00Z",
        ):
            response = client.post(
                "/v1/grants",
                json={
                    "assets": ["insurance.claims"],
                    "purpose": "public_welfare",
                    "scenario": "dates",
                    "methods": ["sql"],
                    "valid_until": moment,
                },
            )
            assert response.status_code == 422, response.text


def test_a_new_data_version_may_be_larger_than_a_json_body(demo) -> None:
    """New versions take uploads like registrations do (they were capped at 1 MiB)."""
    import io
    import json

    from tests.support import HOUSEHOLDS, register_households

    assert register_households(demo, 10).status_code == 201
    rows = "household,size\n" + "".join(f"house{i:07d},{i % 4}\n" for i in range(150_000))
    assert len(rows) > 2 * 1024 * 1024
    with demo.client("city-hospital") as client:
        added = client.post(
            "/v1/assets/city.households/versions",
            data={"card": json.dumps(HOUSEHOLDS)},
            files={"file": ("data.csv", io.BytesIO(rows.encode()), "text/csv")},
        )
    assert added.status_code == 201, added.text
    assert added.json()["row_count"] == 150_000 and added.json()["version"] == 2

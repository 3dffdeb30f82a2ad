"""Console sessions over HTTP, as an attacker would try them: sign-in without its form token,
a planted session cookie, forged forms, expiry, sign-out, key rotation, open redirects."""

from __future__ import annotations

import re
import sqlite3

import httpx
import pytest

from console.security import POLICY
from tests.support import Server

SQL = "SELECT district, COUNT(*) AS visits FROM hospital.visits GROUP BY district"


def _client(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, follow_redirects=False, timeout=30)


def _sign_in(client: httpx.Client, key: str) -> httpx.Response:
    form = client.get("/console/sign-in")
    token = re.search(r'name="sign_in_token" value="([^"]+)"', form.text)
    assert token is not None
    return client.post("/console/sign-in", data={"api_key": key, "sign_in_token": token[1]})


def _csrf(client: httpx.Client, path: str = "/console/query") -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert found is not None
    return found[1]


def test_pages_need_a_session_and_carry_a_strict_policy(server: Server) -> None:
    with _client(server) as client:
        for path in ("/console", "/console/assets", "/console/grants", "/console/query"):
            response = client.get(path)
            assert (response.status_code, response.headers["location"]) == (303, "/console/sign-in")
        root = client.get("/")
        assert (root.status_code, root.headers["location"]) == (303, "/console")
        page = client.get("/console/sign-in")
        assert page.headers["content-security-policy"] == POLICY
        assert "frame-ancestors 'none'" in POLICY and "'unsafe-inline'" not in POLICY
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["cache-control"] == "no-store"
        assert "<script" not in page.text  # no script at all, inline or not


def test_a_signed_in_session_sees_its_pages_and_its_cookie_is_guarded(server: Server) -> None:
    with _client(server) as client:
        signed_in = _sign_in(client, server.keys["analyst"])
        assert (signed_in.status_code, signed_in.headers["location"]) == (303, "/console")
        cookie = signed_in.headers["set-cookie"]
        assert "veil_session=" in cookie
        for attribute in ("HttpOnly", "SameSite=strict", "Path=/console", "Max-Age="):
            assert attribute.lower() in cookie.lower(), attribute
        home = client.get("/console")
        assert home.status_code == 200 and "analyst" in home.text
        # The key itself never reaches the browser, not even in the page.
        assert server.keys["analyst"] not in home.text + cookie


@pytest.mark.parametrize("key", ["", "veil_wrong", "x" * 300])
def test_a_wrong_key_signs_nobody_in(server: Server, key: str) -> None:
    with _client(server) as client:
        refused = _sign_in(client, key)
        assert refused.status_code in (401, 422)
        assert "veil_session" not in refused.headers.get("set-cookie", "")
        assert client.get("/console").status_code == 303


def test_sign_in_without_its_form_token_is_refused(server: Server) -> None:
    """Another site cannot sign a browser in as its own principal (login CSRF)."""
    with _client(server) as client:
        client.get("/console/sign-in")
        forged = client.post(
            "/console/sign-in", data={"api_key": server.keys["analyst"], "sign_in_token": "x"}
        )
        assert forged.status_code == 403
        assert "veil_session=" not in forged.headers.get("set-cookie", "")
    with _client(server) as bare:  # no cookie at all: sent to sign in, nothing read
        response = bare.post("/console/sign-in", data={"api_key": server.keys["analyst"]})
        assert (response.status_code, response.headers["location"]) == (303, "/console/sign-in")


def test_a_planted_session_cookie_is_never_adopted(server: Server) -> None:
    """Session fixation: a token the attacker chose, or one it saw before sign-in, is useless."""
    with _client(server) as client:
        client.cookies.set("veil_session", "attacker-chosen", path="/console")
        assert client.get("/console").status_code == 303
        signed_in = _sign_in(client, server.keys["analyst"])
        fresh = signed_in.cookies.get("veil_session")
        assert fresh and fresh != "attacker-chosen"
    with _client(server) as client:
        _sign_in(client, server.keys["analyst"])
        first = client.cookies.get("veil_session")
        _sign_in(client, server.keys["fintech"])  # signing in again ends the earlier session
        with _client(server) as replay:
            replay.cookies.set("veil_session", first, path="/console")
            assert replay.get("/console").status_code == 303


def test_a_form_without_the_sessions_token_changes_nothing(server: Server) -> None:
    with _client(server) as client:
        _sign_in(client, server.keys["analyst"])
        size = len(httpx.get(f"{server.url}/v1/ledger/checkpoint").text)
        for token in ("", "forged", _csrf(client)[:-1] + "x"):
            forged = client.post("/console/query", data={"csrf": token, "sql": SQL})
            assert forged.status_code == 403
        assert len(httpx.get(f"{server.url}/v1/ledger/checkpoint").text) == size
        # The same form with the token runs.
        assert (
            client.post("/console/query", data={"csrf": _csrf(client), "sql": SQL}).status_code
            == 303
        )


def test_another_sessions_token_does_not_pass(server: Server) -> None:
    with _client(server) as mine, _client(server) as theirs:
        _sign_in(mine, server.keys["analyst"])
        _sign_in(theirs, server.keys["analyst"])
        stolen = _csrf(theirs)
        assert mine.post("/console/query", data={"csrf": stolen, "sql": SQL}).status_code == 403


def test_sign_out_ends_the_session_on_the_server(server: Server) -> None:
    with _client(server) as client:
        _sign_in(client, server.keys["analyst"])
        token = client.cookies.get("veil_session")
        out = client.post("/console/sign-out", data={"csrf": _csrf(client)})
        assert (out.status_code, out.headers["location"]) == (303, "/console/sign-in")
    with _client(server) as replay:
        replay.cookies.set("veil_session", token, path="/console")
        assert replay.get("/console").status_code == 303


def test_an_expired_session_signs_out(server: Server) -> None:
    with _client(server) as client:
        _sign_in(client, server.keys["analyst"])
        assert client.get("/console").status_code == 200
        with sqlite3.connect(server.home / "control.db") as db:
            db.execute("UPDATE console_sessions SET expires_at = '2000-01-01T00:00:00Z'")
        assert client.get("/console").status_code == 303


def test_a_rotated_key_ends_the_sessions_made_from_it(server: Server) -> None:
    with server.client("admin") as admin:
        created = admin.post("/v1/principals",
                             json={"id": "rotating-dev", "roles": ["developer"], "org": "Org"})  # fmt: skip
        assert created.status_code == 201
        with _client(server) as client:
            _sign_in(client, created.json()["api_key"])
            assert client.get("/console").status_code == 200
            rotated = admin.post("/v1/principals/rotating-dev/rotate-key")
            assert rotated.status_code == 200
            assert client.get("/console").status_code == 303
            _sign_in(client, rotated.json()["api_key"])
            assert client.get("/console").status_code == 200
            assert admin.post("/v1/principals/rotating-dev/revoke").status_code == 200
            assert client.get("/console").status_code == 303


@pytest.mark.parametrize(
    "back", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"]
)
def test_the_language_switch_goes_back_only_to_the_console(server: Server, back: str) -> None:
    with _client(server) as client:
        response = client.get("/console/language/zh", params={"back": back})
        assert response.status_code == 303
        assert response.headers["location"] == "/console"


def test_a_receipt_is_checked_only_for_its_parties(server: Server) -> None:
    """Another developer's receipt is not found, as if it did not exist; one's own is."""
    theirs = server.query("SELECT plan, COUNT(*) AS n FROM insurance.claims GROUP BY plan",
                          who="fintech")  # fmt: skip
    assert theirs.status_code == 200, theirs.text
    index = theirs.json()["receipt"]["ledger_index"]
    with _client(server) as client:
        _sign_in(client, server.keys["analyst"])
        assert client.get(f"/console/receipts/{index}").status_code == 404
        _sign_in(client, server.keys["fintech"])
        own = client.get(f"/console/receipts/{index}")
        assert own.status_code == 200 and 'id="verdict"' in own.text
        assert theirs.json()["receipt"]["leaf_hash"] in own.text


def _head_of_huge_upload(server: Server, path: str, cookie: str) -> str:
    import socket
    from urllib.parse import urlparse

    url = urlparse(server.url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as raw:
        raw.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data\r\n"
            f"Cookie: {cookie}\r\nContent-Length: 99999999999\r\n\r\n".encode()
        )
        return raw.recv(4096).decode()


@pytest.mark.parametrize("cookie", ["veil_session=invented", "veil_sign_in=anything", "x=1"])
def test_an_upload_without_a_live_session_is_refused_unread(server: Server, cookie: str) -> None:
    """Only a live session admits a body to the console (the sign-in form's cookie admits its
    own small form only): nobody can make the server take in a file by naming a cookie."""
    reply = _head_of_huge_upload(server, "/console/assets/new", cookie)
    assert reply.startswith("HTTP/1.1 303") and "location: /console/sign-in" in reply.lower()


def test_a_live_sessions_upload_is_still_bounded(server: Server) -> None:
    with _client(server) as client:
        _sign_in(client, server.keys["city-hospital"])
        cookie = f"veil_session={client.cookies.get('veil_session')}"
    assert _head_of_huge_upload(server, "/console/assets/new", cookie).startswith("HTTP/1.1 413")


def test_a_form_from_another_site_is_refused(server: Server) -> None:
    with _client(server) as client:
        _sign_in(client, server.keys["analyst"])
        for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
            forged = client.post("/console/query", data={"csrf": _csrf(client), "sql": SQL},
                                 headers=headers)  # fmt: skip
            assert forged.status_code == 403


def test_a_suspended_principal_sees_no_forms_or_kept_answers(server: Server) -> None:
    with _client(server) as client, server.client("supervisor") as supervisor:
        _sign_in(client, server.keys["fintech"])
        asked = client.post("/console/query", data={
            "csrf": _csrf(client), "purpose": "commercial_pricing",
            "sql": "SELECT plan, COUNT(*) AS n FROM insurance.claims GROUP BY plan"})  # fmt: skip
        assert asked.status_code == 303, asked.text
        answer = asked.headers["location"]
        stop = {"principal": "fintech", "reason": "drill"}
        assert supervisor.post("/v1/emergency/suspend", json=stop).status_code == 200
        try:
            for path in ("/console/query", "/console/grants/new", "/console/jobs/new",
                         answer, f"{answer}/csv"):  # fmt: skip
                shown = client.get(path)
                assert shown.status_code == 403, path
                assert (
                    "insurance.claims" not in shown.text and "commercial_pricing" not in shown.text
                )
        finally:
            assert supervisor.post("/v1/emergency/resume", json=stop).status_code == 200
        assert client.get(answer).status_code == 200


def test_malformed_forms_and_paths_get_a_4xx_never_a_500(server: Server) -> None:
    with _client(server) as client:
        _sign_in(client, server.keys["city-hospital"])
        form = {"csrf": _csrf(client, "/console/assets/new"), "upload_id": "x" * 30}
        for count in ("abc", "1e3", "-1", ""):
            posted = client.post("/console/assets/register", data={**form, "column_count": count})
            assert posted.status_code == 422, count
        for index in ("99999999999999999999999", "-1", "x"):
            assert client.get(f"/console/receipts/{index}").status_code == 422, index


def test_a_principal_holds_a_bounded_number_of_sessions(server: Server) -> None:
    for _ in range(24):
        with _client(server) as client:
            _sign_in(client, server.keys["insurer"])
    with sqlite3.connect(server.home / "control.db") as db:
        (held,) = db.execute(
            "SELECT count(*) FROM console_sessions WHERE principal = 'insurer'"
        ).fetchone()
    assert held == 20

"""Red team of the lean query path, over HTTP: the request gate reads a recently authenticated
key's body without a lookup and the query route authenticates on its worker thread. A key
revoked meanwhile must meet exactly what a key never issued meets, and no framing of a body
may take the gate past its limit."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from itertools import count
from urllib.parse import urlparse

import httpx
import pytest

from console.security import SIGN_IN_COOKIE
from gateway.limits import JSON_BODY_LIMIT
from tests.support import OPERATOR_POLICY, ROOT, Server, free_port, stop_server

SQL = "SELECT district, COUNT(*) AS n FROM hospital.visits GROUP BY district"
serial = count()
# The response headers that carry nothing of the request's path through the gateway.
UNCOMPARED = {"date"}

# Each request a just-revoked key might send: the gate admits it unread, so the route (or
# whatever answers before the route) meets it first.
SHAPES: dict[str, dict] = {
    "a query": {"json": {"sql": SQL}},
    "a dry run": {"json": {"sql": SQL, "dry_run": True}},
    "malformed JSON": {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
    "an unknown field": {"json": {"sql": SQL, "extra": 1}},
    "a bad Idempotency-Key": {"json": {"sql": SQL}, "headers": {"Idempotency-Key": "a b"}},
    "a path with no route": {"json": {"sql": SQL}, "path": "/v1/no-such-route"},
    "a trailing slash": {"json": {"sql": SQL}, "path": "/v1/queries/"},
    "a grant's JSON body": {"json": {"assets": "nope"}, "path": "/v1/grants"},
}


def _developer(demo: Server) -> tuple[str, str]:
    name = f"lean_{next(serial)}_{os.getpid()}"
    with demo.client("admin") as admin:
        made = admin.post("/v1/principals", json={"id": name, "roles": ["developer"], "org": name})
    assert made.status_code == 201, made.text
    return name, made.json()["api_key"]


def _send(demo: Server, key: str, shape: dict) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}", **shape.get("headers", {})}
    request = {k: v for k, v in shape.items() if k in ("json", "content")}
    with httpx.Client(base_url=demo.url, timeout=60) as client:
        return client.post(shape.get("path", "/v1/queries"), headers=headers, **request)


def _seen(response: httpx.Response) -> tuple[int, bytes, list[tuple[str, str]]]:
    """All a client observes of a response, but its date."""
    headers = [(k, v) for k, v in response.headers.multi_items() if k not in UNCOMPARED]
    return response.status_code, response.content, headers


@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_just_revoked_key_is_refused_exactly_as_a_key_never_issued(demo, shape: str) -> None:
    """The gate's recent keys must not tell a key revoked a moment ago (its holder, say a
    departed employee, learning that it was in use) from one never issued: same status, same
    bytes, same headers, whatever the request and whichever part of the gateway refuses it."""
    name, key = _developer(demo)
    # Authenticated by the gate, so recent: it reaches the policy, which has no grant for it.
    assert _send(demo, key, SHAPES["a query"]).json()["error"]["code"] == "POLICY_DENIED"
    with demo.client("admin") as admin:
        assert admin.post(f"/v1/principals/{name}/revoke").status_code == 200
    revoked = _seen(_send(demo, key, SHAPES[shape]))
    never = _seen(_send(demo, "veil_" + "n" * 43, SHAPES[shape]))
    assert revoked[0] == 401, revoked
    assert revoked == never


def test_a_just_revoked_key_leaves_no_entry_and_replays_no_answer(demo) -> None:
    """A query with an Idempotency-Key released once; its key revoked; a retry (and a dry
    run) within the gate's recent window is refused before any record or stored answer."""
    name, key = _developer(demo)
    with httpx.Client(base_url=demo.url, headers={"Authorization": f"Bearer {key}"}) as client:
        asked = client.post(
            "/v1/grants",
            json={"assets": ["hospital.visits"], "purpose": "public_welfare", "scenario": "s",
                  "methods": ["sql"], "valid_until": "2030-01-01T00:00:00Z"},
        )  # fmt: skip
    assert asked.status_code == 201, asked.text
    demo.approve(asked.json()["id"], "city-hospital", "supervisor")
    retry = {"json": {"sql": SQL}, "headers": {"Idempotency-Key": f"{name}-1"}}
    first = _send(demo, key, retry)
    assert first.status_code == 200, first.text
    with demo.client("admin") as admin:
        assert admin.post(f"/v1/principals/{name}/revoke").status_code == 200
    for shape in (retry, SHAPES["a dry run"], SHAPES["a query"]):
        refused = _send(demo, key, shape)
        assert refused.status_code == 401, refused.text
        assert first.json()["query_id"] not in refused.text
    recorded = [e for e in demo.ledger() if e["type"] == "query" and e["principal"] == name]
    assert [entry["query_id"] for entry in recorded] == [first.json()["query_id"]]


def _exchange(url: str, head: bytes, body: int) -> str:
    """Send `head` and then `body` bytes in 64 KiB chunks; the reply's head and error code."""
    address = urlparse(url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as raw:
        raw.sendall(head)
        try:
            for _ in range(body // 0x10000):
                raw.sendall(b"10000\r\n" + b"x" * 0x10000 + b"\r\n")
            raw.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # refused and closed before the rest was sent
        reply = b""
        try:
            while b"}}" not in reply and (chunk := raw.recv(4096)):
                reply += chunk
        except ConnectionResetError:
            pass  # refused, and closed with the rest of the body unread
    return reply.decode(errors="replace")


# `veil serve` with uvicorn's pure-Python HTTP parser, h11 (used where httptools is not
# installed), which passes a Content-Length on beside Transfer-Encoding: chunked.
H11_SERVE = """
import sys
from pathlib import Path
import uvicorn
from gateway.app import create_app
from services.settings import Settings
app = create_app(Settings(home=Path(sys.argv[1])))
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), http="h11", log_level="warning")
"""


@pytest.fixture
def h11_gateway(fresh_demo: Server) -> Iterator[Server]:
    """The demo's home served again, parsed by h11."""
    stop_server(fresh_demo)
    port = free_port()
    env = {**os.environ, "VEIL_QUERY_TIMEOUT_S": "5", "VEIL_POLICY_DIR": str(OPERATOR_POLICY)}
    log = (fresh_demo.home.parent / f"h11-{port}.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-c", H11_SERVE, str(fresh_demo.home), str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Server(f"http://127.0.0.1:{port}", fresh_demo.home, fresh_demo.keys, process)
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    else:
        process.kill()
        pytest.fail(f"the h11 gateway did not become ready: {log.name}")
    yield server
    stop_server(server)


def _both_framings(path: str, headers: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\n".encode()
        + headers
        + b"Content-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n"
    )


def test_a_chunked_body_is_counted_whatever_length_it_also_declares(h11_gateway) -> None:
    """Transfer-Encoding wins over Content-Length (RFC 9112), and h11 hands the app both: a
    body declared as 10 bytes and sent in chunks must still be counted against the limit, for
    a key's query as for the anonymous sign-in form (whose cookie anyone can set)."""
    too_big = 2 * JSON_BODY_LIMIT
    key = h11_gateway.keys["analyst"].encode()
    for path, headers in (
        (
            "/v1/queries",
            b"Authorization: Bearer " + key + b"\r\nContent-Type: application/json\r\n",
        ),
        ("/console/sign-in", f"Cookie: {SIGN_IN_COOKIE}=any\r\n".encode()),
    ):
        reply = _exchange(h11_gateway.url, _both_framings(path, headers), too_big)
        assert reply.startswith("HTTP/1.1 413") and "PAYLOAD_TOO_LARGE" in reply, (path, reply)


def test_a_request_framed_both_ways_is_refused_by_the_shipped_parser(demo) -> None:
    """httptools, which `veil serve` uses, refuses such a request outright."""
    head = _both_framings("/console/sign-in", f"Cookie: {SIGN_IN_COOKIE}=any\r\n".encode())
    reply = _exchange(demo.url, head, 0x10000)
    assert reply.startswith("HTTP/1.1 400"), reply


def test_a_query_key_is_looked_up_once_when_recent_and_once_when_not(demo) -> None:
    """The late check of a recent key runs only where the route never authenticated: a query
    answered (or denied by policy) still costs one lookup, from the gate or from the route."""
    from tests.gateway.test_auth import AUTHENTICATIONS
    from tests.gateway.test_metrics import sample

    _, key = _developer(demo)
    before = sample(demo.metrics(), *AUTHENTICATIONS)
    for _ in range(3):
        assert _send(demo, key, SHAPES["a query"]).status_code == 403
    assert sample(demo.metrics(), *AUTHENTICATIONS) - before == 3


def test_the_gate_reads_no_file_for_a_key_revoked_since_it_was_recent(demo) -> None:
    """A data file's route is never admitted on a recent key: its path variants either match
    the gate's upload pattern (and are looked up) or take a JSON route's limit."""
    name, key = _developer(demo)
    assert _send(demo, key, SHAPES["a query"]).status_code == 403
    with demo.client("admin") as admin:
        assert admin.post(f"/v1/principals/{name}/revoke").status_code == 200
    address = urlparse(demo.url)
    for path in ("/v1/assets", "/v1/assets/x/versions", "/v1/assets/x%2Fy/versions"):
        with socket.create_connection((address.hostname, address.port), timeout=10) as raw:
            raw.sendall(
                f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n".encode()
                + b"Content-Type: multipart/form-data\r\nContent-Length: 99999999999\r\n\r\n"
            )
            reply = b""
            while b"}}" not in reply and (chunk := raw.recv(4096)):
                reply += chunk
        assert reply.startswith((b"HTTP/1.1 401", b"HTTP/1.1 413")), (path, reply)

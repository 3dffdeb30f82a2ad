"""A query waiting for its turn whose client disconnects gives its place up at once: a client
that reconnects finds room in the queue, not a 429 left by its own closed connections."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from gateway.app import create_app
from services.demo import set_up_demo
from services.runtime import Services
from services.settings import Settings
from tests.support import wait_until

PATIENCE_S = 60
SQL = "SELECT district, COUNT(*) AS visits FROM hospital.visits GROUP BY district"


def _waiting(veil: Services) -> float:
    (family,) = veil.metrics.query_queue_waiting.collect()
    return family.samples[0].value


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Services, dict[str, str]]]:
    # One query of a principal runs, one more may wait, and it waits far longer than a test.
    settings = Settings(
        home=tmp_path / "home",
        queries_running=1,
        query_queue_per_principal=1,
        query_queue_wait_s=10 * PATIENCE_S,
    )
    keys = set_up_demo(settings)
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until("the server has started", lambda: server.started)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", app.state.services, keys
    finally:
        server.should_exit = True
        thread.join(PATIENCE_S)


def _send(url: str, key: str) -> socket.socket:
    """A query sent on a connection of its own, its answer left unread."""
    host, port = url.removeprefix("http://").split(":")
    body = json.dumps({"sql": SQL}).encode()
    head = (
        f"POST /v1/queries HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    connection = socket.create_connection((host, int(port)))
    connection.sendall(head + body)
    return connection


def test_a_waiting_query_whose_client_disconnects_gives_its_place_up(served) -> None:
    url, veil, keys = served
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {keys['analyst']}"}) as c:
        assert c.post("/v1/queries", json={"sql": SQL}).status_code == 200
    release = threading.Event()
    holding = threading.Event()

    def hold_the_slot() -> None:
        with veil.queries.hold("analyst"):
            holding.set()
            release.wait(PATIENCE_S)

    holder = threading.Thread(target=hold_the_slot)
    holder.start()
    try:
        assert holding.wait(PATIENCE_S)
        first = _send(url, keys["analyst"])
        wait_until("the query waits", lambda: _waiting(veil) == 1)
        first.close()  # the client gives up while its query waits
        wait_until("it gives its place up", lambda: _waiting(veil) == 0)
        # Its place is free: the same principal's next query waits there, not refused.
        second = _send(url, keys["analyst"])
        wait_until("the next query waits", lambda: _waiting(veil) == 1)
        release.set()
        answer = second.makefile("rb").readline()
        second.close()
        assert answer.startswith(b"HTTP/1.1 200"), answer
    finally:
        release.set()
        holder.join(PATIENCE_S)

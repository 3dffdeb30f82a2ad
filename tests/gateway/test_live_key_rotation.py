"""Keys rotated without downtime: two gateway processes on one home answer every query while
the master key is rotated under them, and what they register afterwards is wrapped under the
new key alone."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from sandbox import keys
from tests.gateway.test_key_rotation import veil, wrapped_keys
from tests.support import HOUSEHOLDS, Server, register_households, start_server, stop_server

SQL = "SELECT sex, COUNT(*) AS n{turn} FROM hospital.visits GROUP BY sex"
PATIENCE_S = 120


class Askers:
    """A client per gateway asking new questions until stopped; every answer is kept."""

    def __init__(self, servers: list[Server]) -> None:
        self.answered: Counter[str] = Counter()
        self.failed: list[dict] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._ask, args=(s,)) for s in servers]
        for thread in self._threads:
            thread.start()

    def _ask(self, server: Server) -> None:
        with server.client("analyst") as client:
            turn = 0
            while not self._stop.is_set():
                turn += 1
                response = client.post("/v1/queries", json={"sql": SQL.format(turn=turn)})
                if response.status_code != 200:
                    self.failed.append({"server": server.url, **response.json()})
                self.answered[server.url] += 1

    def at_least(self, counts: Counter[str], more: int) -> None:
        """Wait until every gateway answered `more` questions beyond `counts`."""
        deadline = time.monotonic() + PATIENCE_S
        while time.monotonic() < deadline:
            if all(self.answered[url] >= counts[url] + more for url in counts):
                return
            time.sleep(0.05)
        raise AssertionError(f"the gateways stopped answering: {self.answered}")

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=PATIENCE_S)


@pytest.fixture
def gateways(tmp_path: Path):
    home = tmp_path / "home"
    first = start_server(home)
    second = start_server(home, command="serve")
    yield home, first, second
    stop_server(second)
    stop_server(first)


def test_both_gateways_answer_throughout_a_master_key_rotation(gateways) -> None:
    home, first, second = gateways
    old_key = (home / "keys" / "master.key").read_bytes()
    askers = Askers([first, second])
    try:
        askers.at_least(Counter({first.url: 0, second.url: 0}), 3)
        rotated = veil("keys", "rotate-master", "--home", str(home))
        assert rotated.returncode == 0, rotated.stderr
        assert json.loads(rotated.stdout)["rewrapped"] >= 2
        # Both keep answering after the rotation, with no restart.
        askers.at_least(Counter(askers.answered), 3)
        # A new asset through one gateway is wrapped under the new key, and the other opens it.
        assert register_households(first, 200).status_code == 201
        grant = second.grant("analyst", [HOUSEHOLDS["id"]], ["city-hospital", "supervisor"])
        counted = second.query(
            f"SELECT size, COUNT(*) AS n FROM {HOUSEHOLDS['id']} GROUP BY size", grant_id=grant
        )
        assert counted.status_code == 200, counted.json()
    finally:
        askers.stop()
    assert askers.failed == []
    new_key = (home / "keys" / "master.key").read_bytes()
    assert new_key != old_key
    for asset_id, wrapped in wrapped_keys(home).items():
        keys.unwrap(new_key, wrapped, asset_id)
        with pytest.raises(ValueError):
            keys.unwrap(old_key, wrapped, asset_id)


def test_both_gateways_sign_with_the_new_key_after_a_signing_key_rotation(gateways) -> None:
    home, first, second = gateways
    with first.client(None) as anyone:
        old_public = anyone.get("/v1/ledger/public-key").json()["public_key"]
    askers = Askers([first, second])
    try:
        askers.at_least(Counter({first.url: 0, second.url: 0}), 3)
        rotated = veil("keys", "rotate-signing", "--home", str(home))
        assert rotated.returncode == 0, rotated.stderr
        # Both keep answering, each recording under checkpoints the new key signs.
        askers.at_least(Counter(askers.answered), 3)
    finally:
        askers.stop()
    assert askers.failed == []
    for server in (first, second):
        with server.client(None) as anyone:
            public = anyone.get("/v1/ledger/public-key").json()["public_key"]
        assert public != old_public
    verified = veil("ledger", "verify", "--home", str(home))
    assert verified.returncode == 0, verified.stdout + verified.stderr

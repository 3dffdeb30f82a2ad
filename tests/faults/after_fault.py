"""What every fault test checks once its fault is over: each answer a client received is in the
ledger, no entry is lost or written twice, the month settles to exactly what was charged, and
`veil ledger verify` passes. Also the clients that keep asking through a fault."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support import Server

# Charged outcomes: a released answer, and a query that ran and failed (never refunded).
CHARGED = ("released", "failed")


@dataclass(frozen=True)
class Asked:
    """One request a client sent, and what the fault's phases were around it."""

    who: str
    status: int
    body: dict
    # The fault had been seen (and not yet repaired) when the request was sent...
    sent_during: bool
    # ...and the repair had not begun when its answer came: it was decided during the fault.
    answered_before_repair: bool
    # Sent once the service was seen to serve again by itself.
    sent_after_recovery: bool

    @property
    def during(self) -> bool:
        return self.sent_during and self.answered_before_repair


@dataclass
class Phases:
    """The fault's moments, as the test sees them; clients read them around each request."""

    fault: threading.Event = field(default_factory=threading.Event)
    repair: threading.Event = field(default_factory=threading.Event)
    recovered: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)


class Clients:
    """Several clients asking in turn until stopped, each request kept with its phases."""

    def __init__(self, server: Server, askers: list[tuple[str, Callable[[int], str]]]) -> None:
        self.server, self.phases = server, Phases()
        self.asked: list[Asked] = []
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._ask, args=(who, sql), daemon=True) for who, sql in askers
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self.phases.stop.set()
        for thread in self._threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in self._threads), "a client never returned"

    def snapshot(self) -> list[Asked]:
        with self._lock:
            return list(self.asked)

    def wait_for(
        self, what: str, condition: Callable[[list[Asked]], bool], limit_s: float = 60
    ) -> None:
        """Poll until `condition` holds of what the clients were answered so far."""
        deadline = time.monotonic() + limit_s
        while not condition(self.snapshot()):
            assert time.monotonic() < deadline, f"never: {what}"
            time.sleep(0.05)

    def ask(self, who: str, sql: str) -> Asked:
        """Send one query as `who`, noting the phases around it, and keep what came back."""
        phases = self.phases
        sent_during = phases.fault.is_set() and not phases.repair.is_set()
        sent_after_recovery = phases.recovered.is_set()
        try:
            with self.server.client(who) as client:
                response = client.post("/v1/queries", json={"sql": sql})
            status, body = response.status_code, _body(response)
        except httpx.HTTPError as exc:  # kept: the checks say whether it may happen
            status, body = 0, {"transport": type(exc).__name__}
        asked = Asked(
            who, status, body, sent_during, not phases.repair.is_set(), sent_after_recovery
        )
        with self._lock:
            self.asked.append(asked)
        return asked

    def _ask(self, who: str, sql: Callable[[int], str]) -> None:
        turn = 0
        while not self.phases.stop.is_set():
            self.ask(who, sql(turn))
            turn += 1


def _body(response: httpx.Response) -> dict:
    """The JSON body, or (kept for the checks to refuse) the text of one that is not JSON."""
    try:
        return response.json()
    except ValueError:
        return {"text": response.text}


def ledger_items(server: Server) -> list[dict]:
    """Every entry as the supervisor reads it: index, leaf hash and the parsed data."""
    items: list[dict] = []
    with server.client("supervisor") as client:
        while page := client.get(
            "/v1/ledger/entries",
            params={"limit": 1000, **({"after": items[-1]["index"]} if items else {})},
        ).json()["items"]:
            items += [dict(item, data=json.loads(item["data"])) for item in page]
    return items


def assert_log_whole(server: Server, items: list[dict]) -> None:
    """Indices run from 0 without a gap up to the signed checkpoint: no entry lost."""
    with server.client(None) as client:
        size = client.get("/v1/ledger/checkpoint").json()["tree_size"]
    assert [item["index"] for item in items] == list(range(size))


def released_queries(items: list[dict]) -> dict[str, dict]:
    """The charged query entries by query id; each query is charged once."""
    charged = [
        item for item in items
        if item["data"]["type"] == "query" and item["data"].get("outcome") in CHARGED
    ]  # fmt: skip
    twice = [qid for qid, n in Counter(i["data"]["query_id"] for i in charged).items() if n > 1]
    assert twice == [], "a query was charged twice"
    return {item["data"]["query_id"]: item for item in charged}


def assert_answers_recorded(items: list[dict], answers: list[dict]) -> None:
    """Each answer's receipt names its own entry: same index, leaf hash, query and cost."""
    by_index = {item["index"]: item for item in items}
    for answer in answers:
        receipt = answer["receipt"]
        item = by_index.get(receipt["ledger_index"])
        assert item is not None, f"answer {answer['query_id']} has no entry"
        assert item["leaf_hash"] == receipt["leaf_hash"]
        assert item["data"]["query_id"] == answer["query_id"]
        assert item["data"]["outcome"] == "released"
        assert item["data"]["cost"] == answer["cost"]


def settlement(server: Server) -> dict:
    """This month's settlement, as the supervisor reads it."""
    with server.client("supervisor") as client:
        return client.get("/v1/settlements").json()


def assert_settled(settled: dict, charged_minor: int) -> None:
    """The month's settlement is exactly what was charged, and shared out to the minor unit."""
    assert settled["total_charged_minor"] == charged_minor
    assert sum(settled["parties"].values()) == charged_minor


def assert_verifies(home: Path, env: dict[str, str] | None = None) -> None:
    verified = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "ledger", "verify", "--home", str(home)],
        env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr


def ready(server: Server) -> int:
    return httpx.get(f"{server.url}/readyz", timeout=10).status_code

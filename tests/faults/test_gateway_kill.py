"""A gateway killed (SIGKILL) while it answers queries from several clients at once: every
answer a client received has its entry in the ledger, the log verifies, no entry is lost, and
the next process serves again without anyone's help."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from tests.support import Server, start_server, stop_server

# Questions the clients take turns asking, private and paid alike, so that entries of every
# kind (and their batches) are being written when the process dies.
QUESTIONS = [
    "SELECT department, COUNT(*) AS n FROM hospital.visits GROUP BY department",
    "SELECT sex, AVG(cost) AS mean_cost FROM hospital.visits GROUP BY sex",
    "SELECT plan, COUNT(*) AS claims FROM insurance.claims GROUP BY plan",
]
CLIENTS = 6
# Answers received before the kill: enough that entries are being written as it lands.
ANSWERS_BEFORE_KILL = 40


def _ask_until_refused(server: Server, who: str, answers: list[dict], enough: threading.Event):
    with server.client(who) as client:
        for turn in range(10_000):
            sql = QUESTIONS[turn % len(QUESTIONS)].replace(" AS n ", f" AS n{turn} ")
            try:
                response = client.post("/v1/queries", json={"sql": sql})
            except httpx.HTTPError:
                return  # the process is gone
            if response.status_code == 200:
                answers.append(response.json())
                if len(answers) >= ANSWERS_BEFORE_KILL:
                    enough.set()


def test_no_answer_received_before_a_kill_is_missing_from_the_ledger(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = start_server(home)
    answers: list[dict] = []
    enough = threading.Event()
    askers = [
        threading.Thread(target=_ask_until_refused, args=(first, who, answers, enough))
        for who in ["analyst", "fintech"] * (CLIENTS // 2)
    ]
    for asker in askers:
        asker.start()
    try:
        assert enough.wait(300), "the clients were never answered"
    finally:
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=30)
        for asker in askers:
            asker.join(timeout=120)
    assert len(answers) >= ANSWERS_BEFORE_KILL
    second = start_server(home, command="serve")
    try:
        with second.client("supervisor") as supervisor:
            for answer in answers:
                receipt = answer["receipt"]
                index = receipt["ledger_index"]
                page = supervisor.get(
                    "/v1/ledger/entries",
                    params={"after": index - 1, "limit": 1} if index else {"limit": 1},
                ).json()["items"]
                assert page and page[0]["index"] == index
                assert page[0]["leaf_hash"] == receipt["leaf_hash"]
            size = supervisor.get("/v1/ledger/checkpoint").json()["tree_size"]
        assert size > max(answer["receipt"]["ledger_index"] for answer in answers)
        # Serving again by itself: a new question is answered and recorded.
        again = second.query(QUESTIONS[0].replace(" AS n ", " AS after_the_kill "))
        assert again.status_code == 200, again.json()
        assert again.json()["receipt"]["ledger_index"] >= size
    finally:
        stop_server(second)
    verified = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "ledger", "verify", "--home", str(home)],
        env=dict(os.environ), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr

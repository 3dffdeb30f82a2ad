"""The OPA sidecar killed (SIGKILL) under a gateway answering several clients, then restarted
on its address. While it is down every request is refused closed (403 POLICY_DENIED, rule
policy_error, as docs/policies.md says), recorded, and /readyz is 503; once it is back the
same gateway, untouched, answers again and is ready; every answer has its entry, nothing is
lost or charged twice, and the log verifies."""

from __future__ import annotations

from pathlib import Path

from tests.faults.after_fault import (
    Asked,
    Clients,
    assert_answers_recorded,
    assert_log_whole,
    assert_settled,
    assert_verifies,
    ledger_items,
    ready,
    released_queries,
    settlement,
)
from tests.support import start_opa, start_server, stop_server, wait_until

# Each developer asks what its grant covers, a new column name each turn so nothing is reused.
ASKERS = [
    ("analyst", lambda turn: f"SELECT sex, COUNT(*) AS n{turn} FROM hospital.visits GROUP BY sex"),
    ("fintech", lambda turn: f"SELECT plan, COUNT(*) AS n{turn} FROM insurance.claims GROUP BY plan"),
] * 2  # fmt: skip
# The test's own question, asked until OPA answers again.
PROBE = ("analyst", "SELECT sex, COUNT(*) AS probe FROM hospital.visits GROUP BY sex")
# The refusal of an engine that cannot decide: the same words whatever the engine said.
REFUSED = {
    "error": {
        "code": "POLICY_DENIED",
        "message": "the policy does not allow this query",
        "violations": [{"rule": "policy_error"}],
    }
}
ANSWERS_BEFORE = 8
REFUSALS_DURING = 3
ANSWERS_AFTER = 2


def test_opa_killed_and_restarted_refuses_closed_then_serves_again(tmp_path: Path) -> None:
    opa = start_opa()
    port = int(opa.url.rsplit(":", 1)[1])
    server = start_server(
        tmp_path / "home", env={"VEIL_POLICY_ENGINE": "opa", "VEIL_OPA_URL": opa.url}
    )
    clients = Clients(server, ASKERS)
    whos = {who for who, _ in ASKERS}
    try:
        clients.start()
        clients.wait_for(
            "answers before the fault", lambda asked: _count(asked, 200) >= ANSWERS_BEFORE
        )
        opa.process.kill()
        opa.process.wait(timeout=30)
        wait_until("/readyz 503 with OPA dead", lambda: ready(server) == 503)
        clients.phases.fault.set()
        clients.wait_for(
            "refusals from every developer while OPA is down",
            lambda asked: all(
                sum(a.who == who and a.during for a in asked) >= REFUSALS_DURING for who in whos
            ),
        )
        assert ready(server) == 503
        clients.phases.repair.set()
        opa = start_opa(port=port)
        # Nothing is done to the gateway: it finds the engine again by itself.
        wait_until("an answer once OPA is back", lambda: clients.ask(*PROBE).status == 200)
        assert ready(server) == 200
        clients.phases.recovered.set()
        clients.wait_for(
            "answers for every developer after the restart",
            lambda asked: all(
                sum(a.who == who and a.sent_after_recovery and a.status == 200 for a in asked)
                >= ANSWERS_AFTER
                for who in whos
            ),
        )
        clients.stop()
        items = ledger_items(server)
        assert_log_whole(server, items)
        settled = settlement(server)
    finally:
        clients.phases.stop.set()
        opa.stop()
        stop_server(server)
    asked = clients.snapshot()
    assert [a for a in asked if a.during and (a.status, a.body) != (403, REFUSED)] == []
    assert [a for a in asked if a.sent_after_recovery and a.status != 200] == []
    assert {a.status for a in asked} <= {200, 403}
    assert [a for a in asked if a.status == 403 and a.body != REFUSED] == []
    answers = [a.body for a in asked if a.status == 200]
    assert_answers_recorded(items, answers)
    # Nothing released that no client received, each refusal recorded once.
    assert set(released_queries(items)) == {answer["query_id"] for answer in answers}
    refused = [
        item for item in items
        if item["data"]["type"] == "query" and item["data"]["outcome"] == "denied"
    ]  # fmt: skip
    assert all(item["data"]["decision"]["reasons"] == ["policy_error"] for item in refused)
    assert len(refused) == _count(asked, 403)
    assert_settled(settled, sum(answer["cost"]["amount_minor"] for answer in answers))
    assert_verifies(server.home)


def _count(asked: list[Asked], status: int) -> int:
    return sum(a.status == status for a in asked)

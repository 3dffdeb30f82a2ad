"""Idempotency keys: a retried query is recorded and charged once; a reused key is a 409."""

from __future__ import annotations

import uuid

PAID = "SELECT plan, COUNT(*) AS claims FROM insurance.claims GROUP BY plan"


def _tree_size(demo) -> int:
    with demo.client("supervisor") as client:
        return client.get("/v1/ledger/checkpoint").json()["tree_size"]


def _post(demo, body: dict, key: str, who: str = "fintech"):
    with demo.client(who) as client:
        return client.post("/v1/queries", json=body, headers={"Idempotency-Key": key})


def test_a_retry_is_answered_from_the_first_record(demo) -> None:
    key = uuid.uuid4().hex
    before = _tree_size(demo)
    first = _post(demo, {"sql": PAID}, key)
    assert first.status_code == 200, first.text
    assert _tree_size(demo) == before + 1
    retry = _post(demo, {"sql": PAID}, key)
    assert retry.status_code == 200
    assert _tree_size(demo) == before + 1, "the retry wrote nothing"
    for field in ("query_id", "cost", "receipt", "rows", "columns"):
        assert retry.json()[field] == first.json()[field]
    fresh = _post(demo, {"sql": PAID}, uuid.uuid4().hex)
    assert fresh.json()["receipt"] != first.json()["receipt"]
    assert _tree_size(demo) == before + 2


def test_the_same_key_with_another_body_is_a_conflict(demo) -> None:
    key = uuid.uuid4().hex
    assert _post(demo, {"sql": PAID}, key).status_code == 200
    before = _tree_size(demo)
    for body in ({"sql": PAID + " ORDER BY plan"}, {"sql": PAID, "purpose": "commercial_pricing"}):
        conflict = _post(demo, body, key)
        assert conflict.status_code == 409, conflict.text
        assert conflict.json()["error"]["code"] == "CONFLICT"
    assert _tree_size(demo) == before


def test_keys_belong_to_their_caller(demo) -> None:
    key = uuid.uuid4().hex
    sql = "SELECT sex, COUNT(*) AS n FROM hospital.visits GROUP BY sex"
    assert _post(demo, {"sql": sql}, key, who="analyst").status_code == 200
    # Another developer's request under the same key neither conflicts nor replays.
    other = _post(demo, {"sql": PAID}, key, who="fintech")
    assert other.status_code == 200
    assert other.json()["columns"] == ["plan", "claims"]


def test_refusals_do_not_take_the_key(demo) -> None:
    key = uuid.uuid4().hex
    rejected = _post(demo, {"sql": "SELECT patient_id FROM insurance.claims"}, key)
    assert rejected.status_code == 422
    before = _tree_size(demo)
    again = _post(demo, {"sql": "SELECT patient_id FROM insurance.claims"}, key)
    assert again.status_code == 422
    assert _tree_size(demo) == before + 1, "every refused attempt is its own record"


def test_malformed_keys_are_refused(demo) -> None:
    for key in ("", "x" * 129, "has space", 'quote"d', "semi;colon"):
        response = _post(demo, {"sql": PAID}, key)
        assert response.status_code == 422, key

"""Authentication over HTTP: one read of the key per request, and always of the key the route
itself reads."""

from __future__ import annotations

import httpx

from tests.gateway.test_metrics import sample

SQL = "SELECT district, COUNT(*) AS n FROM hospital.visits GROUP BY district"
AUTHENTICATIONS = ("veil_stage_duration_seconds_count", 'stage="authentication"')


def test_the_route_authenticates_the_key_it_reads(demo) -> None:
    """The request gate reads the last Authorization header and the route the first: the
    gate's lookup of one key never stands in for the route's of another."""
    valid, invalid = (
        ("Authorization", f"Bearer {demo.keys['analyst']}"),
        ("Authorization", "Bearer nope"),
    )
    with httpx.Client(base_url=demo.url, timeout=60) as client:
        for headers in ([invalid, valid], [valid, invalid]):
            response = client.post("/v1/queries", json={"sql": SQL}, headers=headers)
            assert response.status_code == 401, headers
            assert response.json()["error"]["code"] == "UNAUTHENTICATED"


def test_a_query_reads_its_key_once(demo) -> None:
    """The gate authenticates before the body is read; the route uses that lookup."""
    before = sample(demo.metrics(), *AUTHENTICATIONS)
    assert demo.query(SQL).status_code == 200
    assert sample(demo.metrics(), *AUTHENTICATIONS) - before == 1
    with demo.client("analyst") as client:  # a GET has no gate: its route authenticates
        assert client.get("/v1/grants").status_code == 200
    assert sample(demo.metrics(), *AUTHENTICATIONS) - before == 2


def _developer(demo, name: str) -> str:
    with demo.client("admin") as admin:
        made = admin.post("/v1/principals", json={"id": name, "roles": ["developer"], "org": name})
    assert made.status_code == 201, made.text
    return made.json()["api_key"]


def _refused(demo, key: str, path: str = "/v1/queries", **request: object) -> str:
    with httpx.Client(base_url=demo.url, timeout=60) as client:
        response = client.post(path, headers={"Authorization": f"Bearer {key}"}, **request)
    assert response.status_code == 401, response.text
    return response.json()["error"]["code"]


def test_a_key_revoked_a_moment_after_it_was_used_is_refused_at_once(demo) -> None:
    """The gate reads a recently authenticated key's small bodies without another look at the
    store; the route still authenticates the key itself, so a revocation holds at once."""
    key = _developer(demo, "revoked_after_use")
    for _ in range(3):  # admitted: it reaches the policy, which has no grant for it
        assert _query_code(demo, key) == "POLICY_DENIED"
    with demo.client("admin") as admin:
        assert admin.post("/v1/principals/revoked_after_use/revoke").status_code == 200
    assert _refused(demo, key, json={"sql": SQL}) == "UNAUTHENTICATED"
    # A data file's route checks the key before it reads a byte, recent or not.
    assert _refused(demo, key, "/v1/assets", files={"file": ("x.csv", b"a\n1\n")}) == (
        "UNAUTHENTICATED"
    )


def test_a_key_replaced_a_moment_after_it_was_used_is_refused_at_once(demo) -> None:
    old = _developer(demo, "rotated_after_use")
    assert _query_code(demo, old) == "POLICY_DENIED"
    with demo.client("admin") as admin:
        rotated = admin.post("/v1/principals/rotated_after_use/rotate-key")
    assert rotated.status_code == 200, rotated.text
    assert _refused(demo, old, json={"sql": SQL}) == "UNAUTHENTICATED"
    assert _query_code(demo, rotated.json()["api_key"]) == "POLICY_DENIED"


def _query_code(demo, key: str) -> str:
    with httpx.Client(base_url=demo.url, timeout=60) as client:
        answered = client.post(
            "/v1/queries", json={"sql": SQL}, headers={"Authorization": f"Bearer {key}"}
        )
    return answered.json()["error"]["code"]

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

"""Developers of their own on the shared demo, so the client and CLI tests touch no one else's
grants, budgets or charges."""

from __future__ import annotations

from dataclasses import dataclass

from tests.support import Server

# Answered under thresholds (tests/operator_policy), so results are exact and free of budget.
VISITS_BY_DISTRICT = (
    "SELECT district, COUNT(DISTINCT patient_id) AS patients FROM hospital.visits GROUP BY district"
)
CLAIMS_BY_PLAN = "SELECT plan, COUNT(*) AS n FROM insurance.claims GROUP BY plan"
BY_DISTRICT_JOB = (
    'answer = sql("SELECT district, COUNT(*) AS visits FROM hospital.visits GROUP BY district")\n'
    'publish("by_district", [["district", "label"], ["visits", "count"]], answer["rows"])\n'
)


@dataclass(frozen=True)
class Developer:
    id: str
    key: str
    grant: str


def onboard(
    demo: Server,
    name: str,
    *,
    asset: str = "hospital.visits",
    purpose: str = "public_welfare",
    methods: tuple[str, ...] = ("sql", "job"),
) -> Developer:
    """A new developer organisation with one active grant on `asset`."""
    with demo.client("admin") as admin:
        made = admin.post(
            "/v1/principals", json={"id": name, "roles": ["developer"], "org": f"{name} Ltd."}
        )
    assert made.status_code == 201, made.json()
    demo.keys[name] = made.json()["api_key"]
    with demo.client(name) as client:
        asked = client.post(
            "/v1/grants",
            json={
                "assets": [asset],
                "purpose": purpose,
                "scenario": "client tests",
                "methods": list(methods),
                "valid_until": "2030-01-01T00:00:00Z",
            },
        )
    assert asked.status_code == 201, asked.json()
    provider = {"hospital.visits": "city-hospital", "insurance.claims": "insurer"}[asset]
    demo.approve(asked.json()["id"], provider, "supervisor")
    return Developer(name, demo.keys[name], asked.json()["id"])

"""Fixtures for the policy tests: one embedded engine and the gateway's query:run input."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from policies import EmbeddedEngine

GRANT: dict[str, Any] = {
    "id": "g_abc",
    "developer": "analyst",
    "assets": ["hospital.visits"],
    "columns": {"hospital.visits": ["age", "cost", "patient_id"]},
    "purpose": "public_welfare",
    "scenario": "clinic load by age band",
    "methods": ["sql"],
    "valid_from": "2026-01-01T00:00:00Z",
    "valid_until": "2027-01-01T00:00:00Z",
    "status": "active",
}

INPUT: dict[str, Any] = {
    "scope": "query:run",
    "principal": {"id": "analyst", "roles": ["developer"], "org": "acme", "status": "active"},
    "resource": {
        "assets": [
            {
                "id": "hospital.visits",
                "classification": "L3",
                "provider": "city-hospital",
                "domain": "health",
                "status": "active",
            }
        ],
        "columns": {"hospital.visits": ["age", "cost", "patient_id"]},
    },
    "request": {"method": "sql", "purpose": "public_welfare", "grant_id": None},
    "grants": [GRANT],
    "now": "2026-11-22T10:00:00Z",
}


@pytest.fixture(scope="session")
def engine() -> EmbeddedEngine:
    return EmbeddedEngine()


@pytest.fixture
def base_input() -> dict[str, Any]:
    """The gateway's input for analyst querying hospital.visits under grant g_abc."""
    return copy.deepcopy(INPUT)

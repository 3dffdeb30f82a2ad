"""The demo set-up, driven through the public HTTP API so it exercises what users use."""

from __future__ import annotations

import json
import tempfile
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.app import create_app
from governance import SUPERVISOR_PARTY
from sandbox.demo import write_demo_assets
from services.runtime import initialise
from services.settings import Settings

with warnings.catch_warnings():
    # Starlette's test client suggests httpx2; the in-process client is all the demo needs.
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

CREDENTIALS_FILE = "demo-credentials.json"

PRINCIPALS = [
    ("operator", ["operator"], "Fuzhou Data Operations Co."),
    ("supervisor", ["supervisor"], "Fuzhou Data Bureau"),
    ("city-hospital", ["provider"], "Fuzhou City Hospital"),
    ("insurer", ["provider"], "Minjiang Health Insurance"),
    ("analyst", ["developer"], "Provincial Public Health Institute"),
    ("fintech", ["developer"], "Haixi Fintech Ltd."),
]

GRANTS = [
    (
        "analyst",
        {
            "assets": ["hospital.visits", "insurance.claims"],
            "purpose": "public_welfare",
            "scenario": "Chronic disease burden and out-of-pocket costs by district",
            "methods": ["sql", "job"],
        },
    ),
    (
        "fintech",
        {
            "assets": ["insurance.claims"],
            "purpose": "commercial_pricing",
            "scenario": "Claim frequency by plan for product pricing (paid, industry use)",
            "methods": ["sql"],
        },
    ),
]


def set_up_demo(settings: Settings) -> dict[str, str]:
    """Initialise if needed and create the demo world once; return every demo API key."""
    path = settings.home / CREDENTIALS_FILE
    if path.exists():
        return json.loads(path.read_text())
    admin_key = initialise(settings)
    if admin_key is None:
        raise SystemExit(
            f"{settings.home} is initialised but has no {CREDENTIALS_FILE}; use a new home"
        )
    keys = {"admin": admin_key}
    with TestClient(create_app(settings)) as client, tempfile.TemporaryDirectory() as folder:
        for principal_id, roles, org in PRINCIPALS:
            created = _ok(
                client.post(
                    "/v1/principals",
                    json={"id": principal_id, "roles": roles, "org": org},
                    headers=_bearer(admin_key),
                )
            )
            keys[principal_id] = created["api_key"]
        for asset in write_demo_assets(Path(folder)):
            with asset.csv_path.open("rb") as handle:
                _ok(
                    client.post(
                        "/v1/assets",
                        data={"card": json.dumps(asset.card)},
                        files={"file": (asset.csv_path.name, handle, "text/csv")},
                        headers=_bearer(keys[asset.card["provider"]]),
                    )
                )
        until = (datetime.now(UTC) + timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:%SZ")
        for developer, body in GRANTS:
            grant = _ok(
                client.post(
                    "/v1/grants",
                    json=dict(body, valid_until=until),
                    headers=_bearer(keys[developer]),
                )
            )
            for party in grant["required_approvals"]:
                approver = "supervisor" if party == SUPERVISOR_PARTY else party
                _ok(
                    client.post(
                        f"/v1/grants/{grant['id']}/approve", headers=_bearer(keys[approver])
                    )
                )
    path.write_text(json.dumps(keys, indent=2))
    path.chmod(0o600)
    return keys


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _ok(response) -> dict:  # noqa: ANN001 - an httpx response
    if response.status_code >= 300:
        raise RuntimeError(f"demo set-up failed: {response.status_code} {response.text}")
    return response.json()

"""The demo set-up, driven through the services every interface uses: each principal, asset and
grant is authorised by the policy and recorded in the ledger as it would be over the API."""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from governance import SUPERVISOR_PARTY, Principal
from governance.registrations import Kind, Registration, Step
from sandbox.cards import parse_card
from sandbox.demo import write_demo_assets
from services import assets, grants, principals, registrations
from services.authorisation import (
    Permit,
    assets_resource,
    authorise,
    card_resource,
    grant_resource,
)
from services.metrics import Metrics
from services.registrations import registration_resource
from services.runtime import Services, initialise, open_services
from services.settings import Settings

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
    veil = open_services(settings, Metrics())
    try:
        keys = {"admin": admin_key, **_populate(veil)}
    finally:
        veil.close()
    path.write_text(json.dumps(keys, indent=2))
    path.chmod(0o600)
    return keys


def _populate(veil: Services) -> dict[str, str]:
    """The demo's principals, its two assets and a grant for each developer, all approved."""
    admin = _principal(veil, "admin")
    keys = {}
    for principal_id, roles, org in PRINCIPALS:
        permit = authorise(veil, caller=admin, scope="principal:manage", resource={})
        keys[principal_id] = principals.create_principal(
            veil, permit=permit, principal_id=principal_id, roles=set(roles), org=org
        )
    with tempfile.TemporaryDirectory() as folder:
        for asset in write_demo_assets(Path(folder)):
            card = parse_card(asset.card, new=True)
            provider = _principal(veil, card.provider)
            resource = card_resource(card, status="new")
            permit = authorise(veil, caller=provider, scope="asset:register", resource=resource)
            assets.register_asset(veil, permit=permit, card=card, data=asset.csv_path)
            _register(veil, card.id, provider)
    until = datetime.now(UTC) + timedelta(days=365)
    for developer_id, terms in GRANTS:
        developer = _principal(veil, developer_id)
        cards = {asset: veil.enclave.store.get(asset).card for asset in terms["assets"]}
        resource = assets_resource(veil, list(cards.values()), columns={})
        permit = authorise(veil, caller=developer, scope="grant:request", resource=resource)
        grant = grants.request_grant(
            veil, permit=permit, cards=cards, purpose=terms["purpose"],
            scenario=terms["scenario"], methods=terms["methods"], valid_until=until,
        )  # fmt: skip
        for party in grant.required_parties:
            approver = _principal(veil, "supervisor" if party == SUPERVISOR_PARTY else party)
            resource = grant_resource(veil.control.grant(grant.id))
            permit = authorise(veil, caller=approver, scope="grant:approve", resource=resource)
            grants.approve_grant(veil, permit=permit, grant=veil.control.grant(grant.id))
    return keys


def _register(veil: Services, asset_id: str, holder: Principal) -> None:
    """Walk the demo asset through the registration procedure to its certificate, each step by
    its role; its notice is published without a period, so the demo starts registered."""
    stored = veil.enclave.store.get(asset_id)

    def permit(who: Principal, step: str, registration: Registration | None = None) -> Permit:
        resource = registration_resource(registration, holder=stored.card.provider)
        return authorise(veil, caller=who, scope=f"registration:{step}", resource=resource)

    opened = registrations.open_registration(
        veil, permit=permit(holder, "open"), asset=stored, kind=Kind.FIRST
    )
    for kind in ("legal_opinion", "valuation_report"):
        document = f"Demo {kind.replace('_', ' ')} for {asset_id} (synthetic, for the demo)."
        opened = registrations.file_attachment(
            veil, permit=permit(holder, "attach", opened), registration=opened, kind=kind,
            name=f"{kind}.txt", content=document.encode(),
        )  # fmt: skip
    operator, supervisor = _principal(veil, "operator"), _principal(veil, "supervisor")
    for who, step in ((holder, Step.APPLY), (operator, Step.REVIEW),
                      (supervisor, Step.RE_REVIEW), (operator, Step.PUBLISH),
                      (supervisor, Step.REGISTER)):  # fmt: skip
        opened = registrations.take_step(
            veil, permit=permit(who, step.value, opened), registration=opened, step=step,
            notice_period_s=0,
        )  # fmt: skip


def _principal(veil: Services, principal_id: str) -> Principal:
    found = veil.control.principal(principal_id)
    assert found is not None, principal_id
    return found

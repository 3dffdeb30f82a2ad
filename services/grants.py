"""Grants: a developer asks, every provider and a supervisor approve, and any of them can revoke;
each change is a governance transition and a ledger entry."""

from __future__ import annotations

from datetime import UTC, datetime

from governance import SUPERVISOR_PARTY, Grant, GrantStatus, Principal, utc_now
from sandbox.cards import AssetCard, Role
from services.authorisation import Permit
from services.errors import Invalid
from services.runtime import Services

EARLIEST, LATEST = 2000, 2200  # policy engines count nanoseconds since 1970 in 64 bits
# Roles that read every grant; providers read those they approve, developers their own.
OVERSEERS = ("supervisor", "operator", "admin")


def request_grant(
    veil: Services,
    *,
    permit: Permit,
    cards: dict[str, AssetCard],
    purpose: str,
    scenario: str,
    methods: list[str],
    valid_until: datetime,
    valid_from: datetime | None = None,
    columns: dict[str, list[str]] | None = None,
    quotas: dict[str, int] | None = None,
) -> Grant:
    """A pending grant on the assets `cards` describe, once its terms pass every rule."""
    violations = []
    for asset, names in (columns or {}).items():
        if asset not in cards:
            violations.append({"rule": "column_asset_not_requested", "column": asset})
            continue
        for name in names:
            column = cards[asset].column(name)
            if column is None or column.role is Role.IDENTIFIER:
                violations.append({"rule": "column_not_grantable", "column": f"{asset}.{name}"})
    starts = _stamp(valid_from) if valid_from else utc_now()
    ends = _stamp(valid_until)
    if starts is None or ends is None:
        violations.append({"rule": "validity_years", "column": f"{EARLIEST}-{LATEST}"})
    elif ends <= max(starts, utc_now()):
        violations.append({"rule": "validity_window", "column": "valid_until"})
    violations += _card_violations(cards, purpose, ends)
    if violations:
        raise Invalid("the grant request is not valid", violations)
    parties = sorted({card.provider for card in cards.values()} | {SUPERVISOR_PARTY})
    grant = veil.control.create_grant(
        {
            "developer": permit.caller.id,
            "assets": sorted(cards),
            "columns": columns,
            "purpose": purpose,
            "scenario": scenario,
            "methods": sorted(set(methods)),
            "valid_from": starts,
            "valid_until": ends,
            "quotas": quotas or None,
        },
        parties,
    )
    veil.ledger.append(
        {
            "type": "grant_requested",
            "grant": grant.as_dict(),
            "by": permit.caller.id,
            "decision_id": permit.decision.decision_id,
            "at": grant.created_at,
        },
        idempotency_key=f"grant:{grant.id}:requested",
    )
    return grant


def visible_grants(veil: Services, *, caller: Principal, status: GrantStatus | None) -> list[Grant]:
    """The grants the caller may see, oldest first, optionally of one status."""
    veil.expire_grants()
    grants = veil.control.grants()
    if not caller.has(*OVERSEERS):
        grants = [g for g in grants if g.developer == caller.id or caller.id in g.required_parties]
    return [grant for grant in grants if status is None or grant.status is status]


def grant_with_history(veil: Services, *, grant_id: str) -> dict:
    """One grant as it stands now, its quota use, and every request, approval and stop."""
    veil.expire_grants()
    current = veil.control.grant(grant_id).as_dict()
    if current["quotas"]:
        current["quota_use"] = veil.control.quota_use(grant_id, utc_now()[:10])
    return dict(current, history=veil.control.history(grant_id))


def approve_grant(veil: Services, *, permit: Permit, grant: Grant) -> Grant:
    """The caller's party approves; the grant activates once every party has."""
    party = _party(permit, grant)
    approved = veil.control.approve(grant.id, party, permit.caller.id)
    _record(veil, permit, "grant_approved", grant, party=party, status=approved.status.value)
    return approved


def reject_grant(veil: Services, *, permit: Permit, grant: Grant, reason: str) -> Grant:
    """A party whose approval is required refuses the grant, saying why; it never activates."""
    party = _party(permit, grant)
    rejected = veil.control.reject(grant.id, party, permit.caller.id, reason)
    _record(veil, permit, "grant_rejected", grant, party=party, reason=reason)
    return rejected


def revoke_grant(veil: Services, *, permit: Permit, grant: Grant, reason: str | None) -> Grant:
    """End the grant now; queries and jobs running under it are cancelled."""
    revoked = veil.control.set_status(grant.id, GrantStatus.REVOKED, permit.caller.id, reason)
    # Not counted in the entry: whether a held job was still running is not its developer's.
    veil.running.stop(grant=grant.id)
    _record(veil, permit, "grant_revoked", grant, reason=reason)
    return revoked


def _stamp(moment: datetime) -> str | None:
    if not EARLIEST <= moment.year <= LATEST:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _party(permit: Permit, grant: Grant) -> str:
    # The policy admitted the caller as a party; a provider party acts for itself.
    caller = permit.caller
    is_provider_party = caller.has("provider") and caller.id in grant.required_parties
    return caller.id if is_provider_party else SUPERVISOR_PARTY


def _record(veil: Services, permit: Permit, kind: str, grant: Grant, **details: object) -> None:
    """One ledger entry per change of a grant; a repeated change has one key, so one entry."""
    party = details.get("party")
    veil.ledger.append(
        {
            "type": kind,
            "grant": grant.id,
            **details,
            "by": permit.caller.id,
            "decision_id": permit.decision.decision_id,
            "at": utc_now(),
        },
        idempotency_key=f"grant:{grant.id}:{kind.removeprefix('grant_')}"
        + (f":{party}" if party else ""),
    )


def _card_violations(cards: dict[str, AssetCard], purpose: str, valid_until: str | None) -> list:
    """What the assets' cards forbid: a purpose they do not serve, a term past retention."""
    violations = []
    for asset, card in cards.items():
        if card.purposes is not None and purpose not in card.purposes:
            violations.append({"rule": "purpose_not_allowed", "column": asset})
        retained = card.retention_until
        if retained is not None and valid_until is not None and valid_until[:10] > str(retained):
            violations.append({"rule": "term_beyond_retention", "column": asset})
    return violations

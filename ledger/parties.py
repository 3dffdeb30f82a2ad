"""The parties to a ledger entry: the principals, assets and grants its data names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.postings import PAYEE, PAYER
from ledger.verify import SIGNING_KEY_ROTATED

# Entries about the log itself, which anyone verifying a checkpoint may need.
PUBLIC_TYPES = frozenset({SIGNING_KEY_ROTATED})
# Fields that name a principal acting in, or the subject of, an entry.
PRINCIPAL_FIELDS = ("principal", "by", "developer", "provider", "party")


@dataclass(frozen=True)
class Parties:
    """Who has a stake in one entry: named principals, the assets it is about, and the grants
    it is about when it names no asset (a grant's approvals name the grant alone)."""

    principals: frozenset[str]
    assets: frozenset[str]
    grants: frozenset[str]
    public: bool = False


def parties(data: dict[str, Any]) -> Parties:
    """The parties an entry names, read from its data alone (the caller resolves grants)."""
    principals = {data.get(name) for name in PRINCIPAL_FIELDS}
    assets = set(_strings(data.get("assets"))) | {data.get("asset")}
    grants = {data.get("grant_id")}
    grant = data.get("grant")
    if isinstance(grant, dict):  # a grant request carries the whole grant
        principals |= {grant.get("developer"), *_strings(grant.get("required_approvals"))}
        assets |= set(_strings(grant.get("assets")))
        grants.add(grant.get("id"))
    else:
        grants.add(grant)
    resource = data.get("resource")
    if isinstance(resource, dict):  # a refusal names what it refused access to
        assets |= {a.get("id") for a in resource.get("assets") or () if isinstance(a, dict)}
    cost = data.get("cost")
    if isinstance(cost, dict) and isinstance(cost.get("assets"), dict):
        assets |= set(cost["assets"])
    for account, _amount in data.get("postings") or ():
        principals.add(str(account).removeprefix(PAYEE).removeprefix(PAYER))
    kind, target = data.get("kind"), data.get("target")
    if data.get("type", "").startswith("emergency_"):
        {"principal": principals, "asset": assets, "grant": grants}.get(kind, set()).add(target)
    assets = _named(assets)
    return Parties(
        principals=_named(principals),
        assets=assets,
        # An entry naming assets is about those: use under a grant on several assets is
        # not the business of the providers of assets it did not touch.
        grants=frozenset() if assets else _named(grants),
        public=data.get("type") in PUBLIC_TYPES,
    )


def _strings(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list | tuple) else []


def _named(values: set) -> frozenset[str]:
    return frozenset(v for v in values if isinstance(v, str) and v)

"""Government-guided price caps (政府指导价): a supervisor sets or removes the most an asset, or
every asset of a classification, may charge per rate, each change a ledger entry. A card priced
above the cap that applies is refused; the policy refuses a charge above it (policies/query.rego,
from the caps services/authorisation.py puts in its input)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping

from governance import utc_now
from governance.price_caps import CAPPED_RATES, CLASSIFICATIONS, CapKind, PriceCap
from sandbox.cards import ASSET_ID, MAX_ASSET_ID, AssetCard
from services.authorisation import Permit
from services.errors import Invalid
from services.runtime import Services

INVALID_CAP = "INVALID_CAP"
PRICE_ABOVE_CAP = "PRICE_ABOVE_CAP"
CURRENCY = re.compile(r"^[A-Z]{3}$")
# A card's rates go no higher (sandbox/cards.py MinorUnits), so neither does a cap.
MAX_MINOR = 10**12
MAX_REASON = 500


def cap_target(*, asset: str | None, classification: str | None) -> tuple[CapKind, str]:
    """What a cap names: exactly one asset id or one classification."""
    if (asset is None) == (classification is None):
        message = "name exactly one of asset or classification"
        raise _invalid(message, "cap_target", ["asset", "classification"])
    if asset is not None:
        if not ASSET_ID.match(asset) or len(asset) > MAX_ASSET_ID:
            raise _invalid("the asset id is not valid", "cap_target", ["asset"])
        return CapKind.ASSET, asset
    if classification not in CLASSIFICATIONS:
        message = "the classification is one of L1, L2, L3 or L4"
        raise _invalid(message, "cap_target", ["classification"])
    return CapKind.CLASSIFICATION, str(classification)


def new_cap(
    *,
    asset: str | None,
    classification: str | None,
    currency: str,
    maximum: Mapping[str, object],
    reason: str,
    by: str,
) -> PriceCap:
    """A cap as asked for, once every field keeps the rules: INVALID_CAP naming each that does
    not (a rate it does not know, a maximum that is not a whole number of minor units)."""
    kind, target = cap_target(asset=asset, classification=classification)
    wrong = [
        f"max.{rate}"
        for rate, limit in maximum.items()
        if rate not in CAPPED_RATES or not _minor_units(limit)
    ]
    if not maximum:
        wrong.append("max")
    if not CURRENCY.match(currency):
        wrong.append("currency")
    if not reason.strip() or len(reason) > MAX_REASON:
        wrong.append("reason")
    if wrong:
        raise _invalid("the price cap is not valid", "cap_field", wrong)
    ordered = {rate: limit for rate in CAPPED_RATES if isinstance(limit := maximum.get(rate), int)}
    return PriceCap(kind, target, currency, ordered, reason.strip(), by, utc_now())


def _invalid(message: str, rule: str, columns: list[str]) -> Invalid:
    violations = [{"rule": rule, "column": column} for column in columns]
    return Invalid(message, violations, code=INVALID_CAP)


def _minor_units(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_MINOR


def set_cap(veil: Services, *, permit: Permit, cap: PriceCap) -> dict:
    """Put the cap in force (replacing its target's earlier one) with its ledger entry: from the
    next request on, the policy refuses a charge above it. An asset's cap needs the asset."""
    if cap.kind is CapKind.ASSET:
        veil.enclave.store.get(cap.target)  # refused for an asset that is not registered
    entry = {"type": "price_cap_set", **cap.as_dict(), "decision_id": permit.decision.decision_id}
    written: dict = {}

    def record(replaced: PriceCap | None) -> None:
        if replaced is not None:
            entry["replaced"] = _earlier(replaced)
        written.update(_record(veil, entry))

    veil.price_caps.set_cap(cap, record)
    return written


def remove_cap(
    veil: Services, *, permit: Permit, asset: str | None, classification: str | None
) -> dict:
    """Lift the target's cap, with its ledger entry; NotFound when it has none."""
    kind, target = cap_target(asset=asset, classification=classification)
    written: dict = {}

    def record(removed: PriceCap) -> None:
        entry = {
            "type": "price_cap_removed",
            kind.value: target,
            "currency": removed.currency,
            "max": dict(removed.maximum),
            "set_by": removed.by,
            "set_at": removed.at,
            "by": permit.caller.id,
            "at": utc_now(),
            "decision_id": permit.decision.decision_id,
        }
        written.update(_record(veil, entry))

    veil.price_caps.remove_cap(kind, target, record)
    return written


def caps_in_force(veil: Services) -> list[dict]:
    """Every cap, asset caps then classification caps, each by its target: public rules."""
    return [cap.as_dict() for cap in veil.price_caps.in_force().caps]


def check_card(veil: Services, card: AssetCard) -> None:
    """Refuse a card whose prices (base rates, every row tier, every named plan) are above the
    cap that applies to its asset, or that is priced in another currency than that cap: 422
    PRICE_ABOVE_CAP naming each field. The cap is public and the card the caller's own."""
    cap = veil.price_caps.in_force().applying(card.id, card.classification)
    if cap is None:
        return
    breaches = cap.breaches(card.pricing.model_dump(mode="json"))
    if breaches:
        raise Invalid(
            "the card's prices are above the price cap for its asset, or in another currency",
            [{"rule": rule, "column": column} for rule, column in breaches],
            code=PRICE_ABOVE_CAP,
        )


def _earlier(cap: PriceCap) -> dict:
    return {"currency": cap.currency, "max": dict(cap.maximum), "by": cap.by, "at": cap.at}


def _record(veil: Services, entry: dict) -> dict:
    receipt = veil.ledger.append(entry, idempotency_key="price_cap:" + uuid.uuid4().hex)
    return dict(entry, receipt={"ledger_index": receipt.index, "leaf_hash": receipt.leaf_hash})

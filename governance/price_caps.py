"""Government-guided price caps (政府指导价 / 最高限价): the most one asset, or every asset of a
classification, may charge per rate; the cap that applies to an asset is its own, else its
classification's. Whether a card's prices keep within one is read from the pricing alone."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from database.prepared import Prepared
from database.turns import prepare_turn, writers_turn
from governance.errors import ControlError, NotFound
from governance.tables import price_caps

# The rates a cap may bound, named as a card's pricing names them.
CAPPED_RATES = ("per_query_minor", "per_1k_rows_scanned_minor", "per_cpu_second_minor")
TIERED_RATE = "per_1k_rows_scanned_minor"
CLASSIFICATIONS = ("L1", "L2", "L3", "L4")
# The rules a card's pricing breaks: a rate above the cap, or a currency it cannot be compared in.
ABOVE_CAP = "price_above_cap"
CURRENCY_MISMATCH = "price_cap_currency_mismatch"

_ALL = Prepared(sa.select(price_caps).order_by(price_caps.c.kind, price_caps.c.target))


class CapKind(StrEnum):
    ASSET = "asset"
    CLASSIFICATION = "classification"


@dataclass(frozen=True)
class PriceCap:
    """A cap in force: what it bounds (one asset, or a classification), the most each rate it
    names may be in minor units of its currency, and who set it, why and when."""

    kind: CapKind
    target: str
    currency: str
    maximum: Mapping[str, int]
    reason: str
    by: str
    at: str

    def as_dict(self) -> dict:
        return {
            self.kind.value: self.target,
            "currency": self.currency,
            "max": dict(self.maximum),
            "reason": self.reason,
            "by": self.by,
            "at": self.at,
        }

    def breaches(self, pricing: Mapping[str, Any]) -> list[tuple[str, str]]:
        """(rule, field) for each rate of a card's `pricing` above this cap: its base rates, each
        row tier and each named plan's. Pricing in another currency cannot be compared, so it
        breaks the cap as a whole; a rate that is not a whole number counts as above it."""
        if pricing.get("currency") != self.currency:
            return [(CURRENCY_MISMATCH, "pricing.currency")]
        plans = pricing.get("plans") or {}
        if not isinstance(plans, Mapping):
            return [(ABOVE_CAP, "pricing.plans")]
        priced: list[tuple[str, object]] = [("pricing", pricing)]
        priced += [(f"pricing.plans.{name}", rates) for name, rates in sorted(plans.items())]
        return [(ABOVE_CAP, where) for path, rates in priced for where in self._above(path, rates)]

    def _above(self, path: str, rates: object) -> list[str]:
        if not isinstance(rates, Mapping):
            return [path]
        above = [
            f"{path}.{rate}"
            for rate, limit in self.maximum.items()
            if not _within(rates.get(rate, 0), limit)
        ]
        if TIERED_RATE in self.maximum:
            tiers = rates.get("row_tiers") or []
            if not isinstance(tiers, list | tuple):
                return [*above, f"{path}.row_tiers"]
            above += [
                f"{path}.row_tiers.{n}.{TIERED_RATE}"
                for n, tier in enumerate(tiers)
                if not isinstance(tier, Mapping)
                or not _within(tier.get(TIERED_RATE, 0), self.maximum[TIERED_RATE])
            ]
        return above


def _within(rate: object, limit: int) -> bool:
    return isinstance(rate, int) and not isinstance(rate, bool) and rate <= limit


@dataclass(frozen=True)
class CapsInForce:
    """Every cap in force, read at once."""

    caps: tuple[PriceCap, ...] = ()
    _by_target: dict[tuple[CapKind, str], PriceCap] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        found = {(cap.kind, cap.target): cap for cap in self.caps}
        object.__setattr__(self, "_by_target", found)

    def applying(self, asset: str, classification: str) -> PriceCap | None:
        """The asset's own cap, else its classification's, else none."""
        return self._by_target.get((CapKind.ASSET, asset)) or self._by_target.get(
            (CapKind.CLASSIFICATION, classification)
        )


class PriceCapRecords:
    """Caps in the control store; a change and its record are one transaction."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        prepare_turn(engine)

    def in_force(self) -> CapsInForce:
        """Every cap, in one statement (the policy input of each query reads it)."""
        with self.engine.connect() as db:
            rows = _ALL.all(db)
        return CapsInForce(tuple(_cap_of(row) for row in rows))

    def set_cap(self, cap: PriceCap, record: Callable[[PriceCap | None], None]) -> PriceCap | None:
        """Set the cap, replacing the one its target had; returns the replaced cap. `record`
        is called with it inside the transaction, so a cap takes effect only once its record
        is written, and a record that fails leaves the caps as they were."""
        rates = {rate: cap.maximum.get(rate) for rate in CAPPED_RATES}
        try:
            with writers_turn(self.engine), self.engine.begin() as db:
                earlier = _cap(db, cap.kind, cap.target)
                db.execute(_one(price_caps.delete(), cap.kind, cap.target))
                db.execute(
                    price_caps.insert().values(
                        kind=cap.kind.value,
                        target=cap.target,
                        currency=cap.currency,
                        reason=cap.reason,
                        by=cap.by,
                        at=cap.at,
                        **rates,
                    )  # fmt: skip
                )
                record(earlier)
        except IntegrityError as error:
            raise ControlError("this cap was being set at the same time; send it again") from error
        return earlier

    def remove_cap(
        self, kind: CapKind, target: str, record: Callable[[PriceCap], None]
    ) -> PriceCap:
        """Remove the target's cap and return it; `record` is called with it inside the
        transaction, as for set_cap. NotFound when the target has no cap."""
        with writers_turn(self.engine), self.engine.begin() as db:
            earlier = _cap(db, kind, target)
            if earlier is None:
                raise NotFound(f"no price cap is set for this {kind.value}")
            db.execute(_one(price_caps.delete(), kind, target))
            record(earlier)
        return earlier


def _one(statement: sa.Delete, kind: CapKind, target: str) -> sa.Delete:
    return statement.where(price_caps.c.kind == kind.value, price_caps.c.target == target)


def _cap(db: sa.Connection, kind: CapKind, target: str) -> PriceCap | None:
    row = db.execute(
        sa.select(price_caps)
        .where(price_caps.c.kind == kind.value, price_caps.c.target == target)
        .with_for_update()
    ).first()
    return None if row is None else _cap_of(row)


def _cap_of(row: Any) -> PriceCap:
    maximum = {rate: getattr(row, rate) for rate in CAPPED_RATES if getattr(row, rate) is not None}
    return PriceCap(
        CapKind(row.kind), row.target, row.currency, maximum, row.reason, row.by, row.at
    )

"""Asset cards: the validated description of an asset, its columns and their roles."""

from __future__ import annotations

import json
import math
import re
from datetime import date
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sandbox.errors import CardInvalid, Violation

ASSET_ID = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
# The longest id a new card may take: every file name the store makes from an id (at most the
# id and 19 characters) stays within a file system's 255, with room to spare. Cards stored
# before the rule still load.
MAX_ASSET_ID = 200
# Providers are principals, so a provider is spelled as a principal id.
PRINCIPAL_ID = r"^[a-z][a-z0-9_-]{1,63}$"
COLUMN_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
DECIMAL_TYPE = re.compile(r"^DECIMAL\((\d{1,2}),\s*(\d{1,2})\)$")
PLAIN_TYPES = {"VARCHAR", "BOOLEAN", "SMALLINT", "INTEGER", "BIGINT", "DOUBLE", "DATE", "TIMESTAMP"}
NUMERIC_TYPES = {"SMALLINT", "INTEGER", "BIGINT", "DOUBLE"}


class Role(StrEnum):
    PRIVACY_UNIT = "privacy_unit"
    IDENTIFIER = "identifier"
    JOIN_KEY = "join_key"
    DIMENSION = "dimension"
    FILTER_ONLY = "filter_only"
    MEASURE = "measure"


DOMAIN_TYPES: dict[str, type] = {
    "VARCHAR": str, "BOOLEAN": bool, "SMALLINT": int, "INTEGER": int, "BIGINT": int,
}  # fmt: skip
INTEGER_LIMITS = {"SMALLINT": 2.0**15, "INTEGER": 2.0**31, "BIGINT": 2.0**63, "DOUBLE": 1e300}


def type_limit(column_type: str) -> float:
    """Magnitudes a numeric type holds (exclusive), for checking declared bounds."""
    match = DECIMAL_TYPE.match(column_type)
    if match:
        return 10.0 ** (int(match[1]) - int(match[2]))
    return INTEGER_LIMITS[column_type]


def is_numeric(column_type: str) -> bool:
    return column_type in NUMERIC_TYPES or bool(DECIMAL_TYPE.match(column_type))


class Column(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    type: str
    role: Role
    bounds: tuple[float, float] | None = None
    # A dimension's public domain: every value it may take. Grouped by it alone, a query
    # answers every value (with noise) whether or not it occurs, so none reveals a group.
    domain: Annotated[list[str | int | bool], Field(min_length=1, max_length=1000)] | None = None
    description: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not COLUMN_NAME.match(value) or value.startswith("veil_"):
            raise ValueError("column names are lowercase identifiers not starting with veil_")
        return value

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        normalised = value.strip().upper()
        match = DECIMAL_TYPE.match(normalised)
        if match:
            width, scale = int(match[1]), int(match[2])
            if not (1 <= width <= 38 and scale <= width):
                raise ValueError("DECIMAL width must be 1..38 and scale at most the width")
            return f"DECIMAL({width},{scale})"
        if normalised not in PLAIN_TYPES:
            raise ValueError(f"type must be one of {sorted(PLAIN_TYPES)} or DECIMAL(p,s)")
        return normalised

    @model_validator(mode="after")
    def _bounds(self) -> Column:
        if self.role is Role.MEASURE:
            if not is_numeric(self.type):
                raise ValueError("a measure must have a numeric type")
            if self.bounds is None:
                raise ValueError("a measure needs bounds [low, high]")
            if self.bounds[0] > self.bounds[1]:
                raise ValueError("bounds must be [low, high] with low <= high")
            limit = type_limit(self.type)
            if not all(math.isfinite(b) and -limit < b < limit for b in self.bounds):
                raise ValueError(f"bounds must be finite and fit {self.type}")
        elif self.bounds is not None:
            raise ValueError("only measures have bounds")
        if self.domain is not None:
            self._check_domain(self.domain)
        return self

    def _check_domain(self, domain: list[str | int | bool]) -> None:
        if self.role is not Role.DIMENSION:
            raise ValueError("only dimensions have a domain")
        expected = DOMAIN_TYPES.get(self.type)
        if expected is None:
            raise ValueError("a domain is declared for VARCHAR, BOOLEAN or integer dimensions")
        if not all(type(value) is expected for value in domain):
            raise ValueError(f"every value of a {self.type} domain is a {expected.__name__}")
        if len(set(domain)) != len(domain):
            raise ValueError("a domain lists each value once")


MinorUnits = Annotated[int, Field(ge=0, le=10**12)]
PLAN_NAME = r"^[a-z][a-z0-9_]{0,31}$"
PURPOSE = r"^[a-z][a-z0-9_]{1,63}$"


class RowTier(BaseModel):
    """Rows scanned above `above_rows` are charged at this tier's rate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    above_rows: Annotated[int, Field(gt=0, le=10**15)]
    per_1k_rows_scanned_minor: MinorUnits


class Rates(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    per_query_minor: MinorUnits = 0
    per_1k_rows_scanned_minor: MinorUnits = 0
    per_cpu_second_minor: MinorUnits = 0
    row_tiers: Annotated[list[RowTier], Field(max_length=10)] = []

    @field_validator("row_tiers")
    @classmethod
    def _rising(cls, tiers: list[RowTier]) -> list[RowTier]:
        thresholds = [tier.above_rows for tier in tiers]
        if thresholds != sorted(set(thresholds)):
            raise ValueError("row tiers must have strictly rising above_rows")
        return tiers


class Pricing(Rates):
    """Base rates (the policy's "standard" plan), rates for other named plans, free purposes."""

    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "CNY"
    free_purposes: list[str] = ["public_welfare", "public_governance"]
    plans: dict[Annotated[str, Field(pattern=PLAN_NAME)], Rates] = {}

    @field_validator("plans")
    @classmethod
    def _not_free(cls, plans: dict[str, Rates]) -> dict[str, Rates]:
        if "free" in plans:
            raise ValueError('the plan "free" is always free and takes no rates')
        return plans


Party = Annotated[str, Field(min_length=1, max_length=200)]


class Rights(BaseModel):
    """The three separated rights (holding, processing and use, product operation), where the
    data came from, under what licence, and whether it holds personal information."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    holder: Annotated[str, Field(min_length=1)]
    processing_use: Party | None = None
    product_operation: Party | None = None
    source: str = ""
    license: str = ""
    # Every new card states it (parse_card(new=True)); one stored without it counts as personal.
    personal_data: bool = True


class Privacy(BaseModel):
    """The asset's public differential-privacy terms: how much one privacy unit may contribute
    to an answer (rows beyond these are dropped before anything is computed), and the ε each
    developer organisation may spend on the asset per period. All of it is public."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Groups of one answer a unit's rows may fall in, and rows it may have in each group.
    max_groups_per_unit: Annotated[int, Field(ge=1, le=100)] = 1
    max_rows_per_group: Annotated[int, Field(ge=1, le=1000)] = 1
    # Rows one unit may have in the whole asset, checked when data is registered: answers then
    # aggregate rows in one pass, each unit moving a count by at most this many.
    max_rows_per_unit: Annotated[int, Field(ge=1, le=1000)] | None = None
    epsilon_per_period: Annotated[float, Field(gt=0, le=100)] | None = None


# The most ε a provider may set for its asset's synthetic twin.
MAX_TWIN_EPSILON = 10.0


class Twin(BaseModel):
    """The provider's ε for the asset's synthetic twin, spent once per data version by Veil
    on noisy per-column histograms (sandbox/twin.py). Without it the twin is drawn from the
    card's public domains and bounds alone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epsilon: Annotated[float, Field(gt=0, le=MAX_TWIN_EPSILON)]


class AssetCard(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    title: Annotated[str, Field(min_length=1, max_length=200)]
    description: str = ""
    provider: Annotated[str, Field(pattern=PRINCIPAL_ID)]
    classification: Literal["L1", "L2", "L3", "L4"]
    domain: Annotated[str, Field(min_length=1, max_length=64)]
    rights: Rights
    columns: Annotated[list[Column], Field(min_length=1, max_length=500)]
    pricing: Pricing = Pricing()
    # Purposes grants may name (any when absent), and the last day data may be used on.
    purposes: list[Annotated[str, Field(pattern=PURPOSE)]] | None = None
    retention_until: date | None = None
    # The smallest group any release may show; the policy may ask for more, never less.
    min_group_size: Annotated[int, Field(ge=2, le=100_000)] | None = None
    stewards: Annotated[list[Party], Field(max_length=20)] = []
    privacy: Privacy = Privacy()
    twin: Twin | None = None
    revenue_shares_bp: dict[str, Annotated[int, Field(gt=0, le=10_000)]]

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not ASSET_ID.match(value):
            raise ValueError("asset id must be <namespace>.<name>, lowercase [a-z][a-z0-9_]*")
        return value

    @model_validator(mode="after")
    def _whole(self) -> AssetCard:
        names = [column.name for column in self.columns]
        if len(set(names)) != len(names):
            raise ValueError("column names must be unique")
        units = [c for c in self.columns if c.role is Role.PRIVACY_UNIT]
        if len(units) != 1:
            raise ValueError("an asset has exactly one privacy_unit column")
        if sum(self.revenue_shares_bp.values()) != 10_000:
            raise ValueError("revenue_shares_bp must sum to 10000")
        return self

    @property
    def namespace(self) -> str:
        return self.id.split(".")[0]

    @property
    def name(self) -> str:
        return self.id.split(".")[1]

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def privacy_unit(self) -> Column:
        return next(c for c in self.columns if c.role is Role.PRIVACY_UNIT)


def parse_card(raw: str | bytes | dict, *, new: bool = False) -> AssetCard:
    """Validate a card; problems become a CardInvalid listing each field at fault.

    A `new` card (registered or revised by its provider) must state whether it holds personal
    data: the privacy model treats a card that does not say as personal, never the reverse."""
    try:
        data = json.loads(raw) if isinstance(raw, str | bytes) else raw
    except (ValueError, UnicodeDecodeError) as exc:
        raise CardInvalid("the card is not valid JSON", [Violation("card_json")]) from exc
    rights = data.get("rights") if isinstance(data, dict) else None
    if new and isinstance(rights, dict) and "personal_data" not in rights:
        raise CardInvalid(
            "a card states whether it holds personal data: rights.personal_data, true or false",
            [Violation("personal_data_required", "rights.personal_data")],
        )
    asset_id = data.get("id") if isinstance(data, dict) else None
    if new and isinstance(asset_id, str) and len(asset_id) > MAX_ASSET_ID:
        raise CardInvalid(
            f"invalid asset card: id: an asset id is at most {MAX_ASSET_ID} characters",
            [Violation("card_field", "id")],
        )
    try:
        return AssetCard.model_validate(data)
    except ValidationError as exc:
        violations = [_violation(error) for error in exc.errors(include_input=False)]
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'card'}: {e['msg']}"
            for e in exc.errors(include_input=False)
        )
        raise CardInvalid(f"invalid asset card: {detail}", violations) from exc


def _violation(error: dict) -> Violation:
    location = ".".join(str(part) for part in error["loc"]) or "card"
    return Violation("card_field", location)

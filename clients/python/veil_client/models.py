"""Pydantic models of Veil's answers; fields the server adds later are kept, not refused."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from veil_client.errors import UnexpectedResponse

T = TypeVar("T")


class Model(BaseModel):
    """An answer: frozen, and open to fields a newer server adds."""

    model_config = ConfigDict(extra="allow", frozen=True)


def parsed(shape: type[T], payload: Any) -> T:
    """`payload` as `shape`, or UnexpectedResponse when it is not Veil's documented shape."""
    try:
        return TypeAdapter(shape).validate_python(payload)
    except ValidationError as error:
        raise UnexpectedResponse(
            0, "UNEXPECTED_RESPONSE", "the answer is not in Veil's documented shape"
        ) from error


class Receipt(Model):
    """Where an entry sits in the ledger: its index and leaf hash (hex)."""

    ledger_index: int
    leaf_hash: str


class Column(Model):
    name: str
    type: str
    role: str
    bounds: list[float] | None = None
    domain: Any = None
    description: str | None = None


class Asset(Model):
    """An asset's card as the catalogue shows it: never its data."""

    id: str
    title: str
    provider: str
    classification: str
    columns: list[Column]
    description: str | None = None
    domain: str | None = None
    rights: dict[str, Any] = {}
    pricing: dict[str, Any] | None = None
    revenue_shares_bp: dict[str, int] | None = None
    row_count: int | None = None
    registered_at: str | None = None
    version: int | None = None
    revision: int | None = None
    lifecycle: str = "active"


class AssetVersion(Model):
    """One card an asset has had: a data version, or a revision of its card."""

    version: int
    revision: int
    at: str
    card: dict[str, Any]


class Destruction(Model):
    """The ledger entry of a crypto-shredding, with its receipt."""

    asset: str
    method: str
    grants_ended: list[str]
    reason: str
    by: str
    at: str
    receipt: Receipt


class GrantEvent(Model):
    event: str
    by: str | None = None
    party: str | None = None
    reason: str | None = None
    at: str


class Grant(Model):
    """A grant; `history` is filled when it was read alone."""

    id: str
    developer: str
    assets: list[str]
    purpose: str
    scenario: str
    methods: list[str]
    status: str
    valid_until: str
    valid_from: str | None = None
    columns: dict[str, list[str]] | None = None
    quotas: dict[str, int] | None = None
    created_at: str | None = None
    required_approvals: list[str] = []
    approvals: list[str] = []
    history: list[GrantEvent] = []
    quota_use: dict[str, Any] | None = None


class Cost(Model):
    amount_minor: int
    currency: str | None = None
    plan: str | None = None
    assets: dict[str, int] = {}


class Privacy(Model):
    """How a noisy answer was made: mechanism, ε and δ spent, and each column's accuracy."""

    mode: str
    epsilon: float | None = None
    delta: float | None = None
    reused: bool = False
    columns: dict[str, dict[str, Any]] = {}


class JobTable(Model):
    columns: list[Any]
    rows: list[list[Any]]


class JobRecord(Model):
    """A job as its reader may see it: while it runs, its developer sees little but the status."""

    id: str
    status: str
    developer: str | None = None
    grant_id: str | None = None
    code_sha256: str | None = None
    outputs: dict[str, JobTable] | None = None
    error: dict[str, Any] | None = None
    disclosure: dict[str, Any] | None = None
    review: list[dict[str, Any]] | None = None
    cpu_ms: int | None = None
    submitted_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    decided_by: str | None = None


class Suspension(Model):
    """An emergency stop or its lifting, as recorded in the ledger."""

    type: str
    kind: str
    target: str
    reason: str
    by: str
    at: str
    receipt: Receipt
    cancelled: int | None = None


class BudgetLine(Model):
    asset: str
    epsilon_spent: float
    epsilon_left: float
    delta_spent: float
    delta_left: float


class Budgets(Model):
    """A developer sees its organisation's `assets`; overseers every organisation's and the cap."""

    period: str
    organisation: str | None = None
    assets: list[BudgetLine] = []
    organisations: dict[str, list[BudgetLine]] = {}
    all_developers: list[BudgetLine] = []


class UsageLine(Model):
    ledger_index: int
    at: str
    principal: str
    reference: str | None = None
    outcome: str
    assets: list[str] = []
    rows_scanned: int = 0
    cpu_ms: int = 0
    bytes_returned: int = 0
    amount_minor: int = 0
    currency: str | None = None


class Usage(Model):
    period: str
    requests: int
    outcomes: dict[str, int] = {}
    charged_minor: dict[str, int] = {}
    rows_scanned: int = 0
    cpu_ms: int = 0
    bytes_returned: int = 0
    items: list[UsageLine] = []


class Settlement(Model):
    """A month's totals from the ledger as of the signed checkpoint of `tree_size`."""

    period: str
    currency: str | None = None
    total_charged_minor: int
    parties: dict[str, int] = {}
    developers: dict[str, int] = {}
    tree_size: int | None = None


class Checkpoint(Model):
    """The newest signed tree head; `note` is the C2SP signed note that proves it."""

    tree_size: int
    root_hash: str
    note: str


class LedgerKey(Model):
    """The ledger's key name (its origin) and base64 Ed25519 public key: pin these."""

    name: str
    public_key: str


class Entry(Model):
    """A ledger entry; `data` is the exact text hashed into its leaf."""

    index: int
    leaf_hash: str
    data: str

    def content(self) -> dict[str, Any]:
        return json.loads(self.data)


class VerifiedReceipt(Model):
    """A receipt proven to sit in the tree a checkpoint signed under the pinned key."""

    ledger_index: int
    leaf_hash: str
    tree_size: int
    root_hash: str
    origin: str

"""Data product descriptions (产品说明): a developer files what it built from released outputs,
resting on ledger receipts of its organisation's released queries and jobs and naming the asset
versions it drew on; filing and withdrawal are ledger entries committing to the product's
content. Its organisation's developers, the providers of its sources and overseers read it.

A receipt that is not its organisation's is refused exactly as one that does not exist (or
whose leaf hash is wrong): filing tells a developer nothing about anyone else's entries."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date

from governance import NotFound, Principal, utc_now
from governance.job_records import JobStatus
from governance.products import DataProduct, ProductRecords, ReceiptRef, Source
from ledger import Entry, canonical_json, usage
from sandbox.cards import ASSET_ID, MAX_ASSET_ID
from sandbox.errors import SandboxError
from services.authorisation import Permit
from services.errors import Denied, Invalid, Missing
from services.runtime import Services
from services.settlements import month

FILE_SCOPE = "product:file"
READ_SCOPE = "product:read"
WITHDRAW_SCOPE = "product:withdraw"

INVALID_PRODUCT = "INVALID_PRODUCT"
RECEIPT_REFUSED = "RECEIPT_REFUSED"
SOURCE_REFUSED = "SOURCE_REFUSED"
# One message per code whatever the receipts were: its words must not tell them apart.
INVALID_MESSAGE = "the product description is not valid"
RECEIPT_MESSAGE = "a receipt is not one of a released query or job of your organisation"
SOURCE_MESSAGE = "the sources are not exactly the assets the receipts read, at versions they used"
UNKNOWN_PRODUCT = "no such product"

# Rules a refusal names, each at the field it concerns (`receipts[2]`, `sources[0]`).
PRODUCT_FIELD = "product_field"
DUPLICATE_RECEIPT = "duplicate_receipt"
DUPLICATE_SOURCE = "duplicate_source"
# Not a receipt of the organisation: no entry at the index, another leaf hash there, or an
# entry that is not the organisation's, all alike.
RECEIPT_UNKNOWN = "receipt_unknown"
# The organisation's entry, but not a released query or job.
RECEIPT_NOT_RELEASED = "receipt_not_released"
SOURCE_NOT_READ = "source_not_read"
SOURCE_VERSION = "source_version"
SOURCE_MISSING = "source_missing"
NOT_PRODUCT_DEVELOPER = "not_product_developer"

MAX_RECEIPTS = 50
MAX_SOURCES = 50
MAX_NAME = 200
MAX_DESCRIPTION = 4000
MAX_SCOPE = 2000
MAX_REASON = 500
MAX_INDEX = 2**53  # as the ledger routes bound an index
MAX_VERSION = 2**31 - 1
LEAF_HASH = re.compile(r"^[0-9a-f]{64}$")
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
PRODUCT_ID = re.compile(r"^p_[0-9a-f]{32}$")
# Line breaks and tabs are text; other control characters are not (PostgreSQL stores no NUL).
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
OVERSEERS = ("supervisor", "operator")
# A job's outcomes on its metered entry that may precede a release: run, or held for review.
JOB_RAN = ("succeeded", "held")


@dataclass(frozen=True)
class ProductRequest:
    """A product description as a developer sends it."""

    name: str
    description: str
    scope: str
    date: str
    sources: tuple[Source, ...]
    receipts: tuple[ReceiptRef, ...]


def records(veil: Services) -> ProductRecords:
    """The control store's product records."""
    return veil.products


def file_product(veil: Services, *, permit: Permit, request: ProductRequest) -> dict:
    """File a product description once every receipt is a released query or job of the
    caller's organisation and the sources are exactly the assets they read, at versions they
    used; its `product_filed` entry commits to its content. Nothing is stored on a refusal:
    INVALID_PRODUCT, RECEIPT_REFUSED or SOURCE_REFUSED (422), each naming the fields."""
    caller = permit.caller
    request = _checked(request)
    read = _receipts_read(veil, caller, request.receipts)
    _check_sources(veil, request.sources, read)
    product = DataProduct(
        id="p_" + uuid.uuid4().hex,
        developer=caller.id,
        org=caller.org,
        name=request.name,
        description=request.description,
        scope=request.scope,
        date=request.date,
        sources=request.sources,
        receipts=request.receipts,
        filed_at=utc_now(),
        content_sha256="",
    )
    product = replace(product, content_sha256=content_sha256(product))
    entry = {
        "type": "product_filed",
        "product_id": product.id,
        "principal": caller.id,
        "org": caller.org,
        "assets": product.assets,
        "content_sha256": product.content_sha256,
        "decision_id": permit.decision.decision_id,
        "at": product.filed_at,
    }

    def record() -> tuple[int, str]:
        receipt = veil.ledger.append(entry, idempotency_key=f"product:{product.id}:filed")
        return receipt.index, receipt.leaf_hash

    return product_view(records(veil).file(product, record))


def content_sha256(product: DataProduct) -> str:
    """SHA-256 of the canonical JSON (ledger/canonical.py) of the product's filed content."""
    return hashlib.sha256(canonical_json(product.content()).encode()).hexdigest()


def product_view(product: DataProduct) -> dict:
    """A product as its readers see it: its content, status, hash and ledger receipts."""
    withdrawal = product.withdrawal
    withdrawn = None
    if withdrawal is not None:
        withdrawn = {"at": withdrawal.at, "by": withdrawal.by, "reason": withdrawal.reason,
                     "receipt": _receipt(withdrawal.landed)}  # fmt: skip
    assert product.filed is not None
    return {
        **product.content(),
        "status": product.status.value,
        "content_sha256": product.content_sha256,
        "filed": _receipt(product.filed),
        "withdrawn": withdrawn,
    }


def visible_products(veil: Services, *, caller: Principal) -> list[dict]:
    """The products `caller` may read, newest first: a developer its organisation's, a
    provider those with a source among its assets, supervisors and operators all."""
    if caller.has(*OVERSEERS):
        return [product_view(p) for p in records(veil).listing()]
    org = caller.org if not caller.has("provider") else None
    provided = _provided(veil, caller)
    found = records(veil).listing(org=org)
    return [product_view(p) for p in found if _readable(caller, p, provided)]


def read_product(veil: Services, *, caller: Principal, product_id: str) -> DataProduct:
    """The product, if `caller` may read it; Missing otherwise, as for one that does not exist."""
    if not PRODUCT_ID.match(product_id):
        raise Missing(UNKNOWN_PRODUCT)
    try:
        product = records(veil).get(product_id)
    except NotFound:
        raise Missing(UNKNOWN_PRODUCT) from None
    if not caller.has(*OVERSEERS) and not _readable(caller, product, _provided(veil, caller)):
        raise Missing(UNKNOWN_PRODUCT)
    return product


def product_resource(product: DataProduct) -> dict:
    """A product as the policy sees it: who filed it, for which organisation, on which assets."""
    return {"product": {"id": product.id, "developer": product.developer, "org": product.org,
                        "assets": product.assets}}  # fmt: skip


def withdraw_product(
    veil: Services, *, permit: Permit, product_id: str, reason: str | None
) -> dict:
    """Withdraw a filed product, its `product_withdrawn` entry committing to the content it
    withdraws: only the developer who filed it (403 otherwise; 404 for a product it may not
    read; 409 once withdrawn)."""
    caller = permit.caller
    product = read_product(veil, caller=caller, product_id=product_id)
    if product.developer != caller.id:
        raise Denied(
            "only the developer who filed a product may withdraw it",
            [{"rule": NOT_PRODUCT_DEVELOPER}],
        )
    if reason is not None:
        reason = reason.strip() or None
    if reason is not None and (len(reason) > MAX_REASON or not _text(reason, newlines=True)):
        raise Invalid(INVALID_MESSAGE, [_field("reason")], code=INVALID_PRODUCT)
    at = utc_now()

    def record(current: DataProduct) -> tuple[int, str]:
        entry = {
            "type": "product_withdrawn",
            "product_id": current.id,
            "principal": caller.id,
            "org": current.org,
            "assets": current.assets,
            "content_sha256": current.content_sha256,
            "reason": reason,
            "decision_id": permit.decision.decision_id,
            "at": at,
        }
        receipt = veil.ledger.append(entry, idempotency_key=f"product:{current.id}:withdrawn")
        return receipt.index, receipt.leaf_hash

    withdrawn = records(veil).withdraw(product.id, by=caller.id, at=at, reason=reason,
                                       record=record)  # fmt: skip
    return product_view(withdrawn)


def receipts_to_offer(
    veil: Services, *, caller: Principal, period: str | None = None, limit: int = 50
) -> list[dict]:
    """The caller's own released queries and jobs of a month (this one by default), from its
    usage, newest first, each with its receipt and the assets it read: what a product may rest
    on."""
    chosen = month(period)
    own = usage(veil.ledger.replay(chosen), chosen, lambda data: data.get("principal") == caller.id)
    offered: list[dict] = []
    orgs: dict[str, str | None] = {}
    for line in reversed(own.lines):
        if len(offered) == limit:
            break
        if line.outcome not in ("released", *JOB_RAN):
            continue
        entry = _entry_at(veil, line.index)
        if entry is None:
            continue
        verdict, read = _verdict(veil, caller, json.loads(entry.data), orgs)
        if verdict is None:
            offered.append({"ledger_index": entry.index, "leaf_hash": entry.leaf_hash,
                            "at": line.at, "reference": line.reference,
                            "outcome": line.outcome,
                            "assets": sorted(read.versions)})  # fmt: skip
    return offered


def versions_had(veil: Services, asset: str) -> list[int]:
    """The data versions an asset has had, newest first (none for an asset never registered)."""
    store = veil.enclave.store
    try:
        latest = store.get(asset).version
    except SandboxError:
        gone = store.destroyed().get(asset)
        latest = gone.version if gone else 0
    return list(range(latest, 0, -1))


def _checked(request: ProductRequest) -> ProductRequest:
    """The request with its text trimmed, once every field keeps the rules: INVALID_PRODUCT
    naming each that does not."""
    name, description, scope = (text.strip() for text in
                                (request.name, request.description, request.scope))  # fmt: skip
    wrong = []
    if not name or len(name) > MAX_NAME or not _text(name, newlines=False):
        wrong.append(_field("name"))
    if not description or len(description) > MAX_DESCRIPTION or not _text(description, True):
        wrong.append(_field("description"))
    if not scope or len(scope) > MAX_SCOPE or not _text(scope, newlines=True):
        wrong.append(_field("scope"))
    if not _day(request.date):
        wrong.append(_field("date"))
    wrong += _listed("receipts", request.receipts, MAX_RECEIPTS)
    wrong += _listed("sources", request.sources, MAX_SOURCES)
    seen_indexes: set[int] = set()
    for n, receipt in enumerate(request.receipts[:MAX_RECEIPTS]):
        where = f"receipts[{n}]"
        if not 0 <= receipt.ledger_index <= MAX_INDEX or not LEAF_HASH.match(receipt.leaf_hash):
            wrong.append(_field(where))
        elif receipt.ledger_index in seen_indexes:
            wrong.append({"rule": DUPLICATE_RECEIPT, "column": where})
        seen_indexes.add(receipt.ledger_index)
    seen_assets: set[str] = set()
    for n, source in enumerate(request.sources[:MAX_SOURCES]):
        where = f"sources[{n}]"
        if not _asset_id(source.asset) or not 1 <= source.version <= MAX_VERSION:
            wrong.append(_field(where))
        elif source.asset in seen_assets:
            wrong.append({"rule": DUPLICATE_SOURCE, "column": where})
        seen_assets.add(source.asset)
    if wrong:
        raise Invalid(INVALID_MESSAGE, wrong, code=INVALID_PRODUCT)
    return replace(request, name=name, description=description, scope=scope)


def _listed(name: str, items: tuple, most: int) -> list[dict]:
    return [] if 1 <= len(items) <= most else [_field(name)]


def _field(column: str) -> dict:
    return {"rule": PRODUCT_FIELD, "column": column}


def _text(text: str, newlines: bool) -> bool:
    """Whether `text` can be stored and hashed as it is: UTF-8, without control characters
    (but line breaks and tabs where `newlines`)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, which neither JSON canon nor PostgreSQL takes
        return False
    if CONTROL.search(text):
        return False
    return newlines or not any(mark in text for mark in "\n\r\t")


def _day(text: str) -> bool:
    if not isinstance(text, str) or not DAY.match(text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _asset_id(asset: str) -> bool:
    return isinstance(asset, str) and len(asset) <= MAX_ASSET_ID and bool(ASSET_ID.match(asset))


@dataclass
class Reads:
    """What accepted receipts read: per asset the versions they recorded using (None once one
    recorded none), and the assets a query certainly read. A job's entry names its grant's
    assets, which it may have read: a source may be one of them, but need not list them all."""

    versions: dict[str, set[int] | None] = field(default_factory=dict)
    certain: set[str] = field(default_factory=set)

    def add(self, more: Reads) -> None:
        for asset, used in more.versions.items():
            known = self.versions.get(asset, set())
            self.versions[asset] = None if known is None or used is None else known | used
        self.certain |= more.certain


def _receipts_read(veil: Services, caller: Principal, receipts: Iterable[ReceiptRef]) -> Reads:
    """What the receipts read, once each is a released query or job of the caller's
    organisation: RECEIPT_REFUSED naming each that is not."""
    wrong: list[dict] = []
    read = Reads()
    orgs: dict[str, str | None] = {}
    for n, ref in enumerate(receipts):
        entry = _entry_at(veil, ref.ledger_index)
        if entry is None or entry.leaf_hash != ref.leaf_hash:
            verdict, used = RECEIPT_UNKNOWN, Reads()
        else:
            verdict, used = _verdict(veil, caller, json.loads(entry.data), orgs)
        if verdict is not None:
            wrong.append({"rule": verdict, "column": f"receipts[{n}]"})
            continue
        read.add(used)
    if wrong:
        raise Invalid(RECEIPT_MESSAGE, wrong, code=RECEIPT_REFUSED)
    return read


def _entry_at(veil: Services, index: int) -> Entry | None:
    found = veil.ledger.entries(after=index - 1, limit=1)
    return found[0] if found and found[0].index == index else None


def _verdict(
    veil: Services, caller: Principal, data: dict, orgs: dict[str, str | None]
) -> tuple[str | None, Reads]:
    """Why an entry cannot be a receipt of the caller's (None when it can), and what it read.

    Whose it is comes first: an entry of no principal of the caller's organisation is unknown,
    whatever it records, so nothing else about it shows."""
    principal = data.get("principal")
    if not isinstance(principal, str) or _org(veil, principal, orgs) != caller.org:
        return RECEIPT_UNKNOWN, Reads()
    assets = [asset for asset in data.get("assets") or () if isinstance(asset, str)]
    if not assets or not _released(veil, data):
        return RECEIPT_NOT_RELEASED, Reads()
    recorded = data.get("versions")
    recorded = recorded if isinstance(recorded, dict) else {}
    read = Reads(certain=set(assets) if data.get("type") == "query" else set())
    for asset in assets:
        version = recorded.get(asset)
        known = isinstance(version, int) and not isinstance(version, bool)
        read.versions[asset] = {version} if known else None
    return None, read


def _org(veil: Services, principal: str, orgs: dict[str, str | None]) -> str | None:
    if principal not in orgs:
        found = veil.control.principal(principal)
        orgs[principal] = found.org if found else None
    return orgs[principal]


def _released(veil: Services, data: dict) -> bool:
    """A query answered to its developer, or a job whose outputs were released."""
    kind = data.get("type")
    if kind == "query":
        # A job's queries answered the job, not its developer: the job's release is the receipt.
        own = "job_id" not in data and not data.get("held") and not data.get("dry_run")
        return own and data.get("outcome") == "released"
    if kind == "job":
        return data.get("outcome") in JOB_RAN and _job_released(veil, data.get("job_id"))
    return False


def _job_released(veil: Services, job_id: object) -> bool:
    """Whether a job's outputs were released: its last release decision on the ledger (a
    reviewer's, else the gate's) released them, and the job stands succeeded."""
    if not isinstance(job_id, str):
        return False
    try:
        job = veil.job_records.get(job_id)
    except NotFound:
        return False
    if job.status is not JobStatus.SUCCEEDED:
        return False
    decided = veil.ledger.find(f"job:{job_id}:release:review") or veil.ledger.find(
        f"job:{job_id}:release:gate"
    )
    return decided is not None and json.loads(decided.data).get("decision") == "released"


def _check_sources(veil: Services, sources: tuple[Source, ...], read: Reads) -> None:
    """SOURCE_REFUSED unless the sources are exactly the assets the receipts read (every one a
    query read; any a job may have read), each at a version they recorded using (where all of
    them recorded one), else at one it has had."""
    wrong: list[dict] = []
    for n, source in enumerate(sources):
        where = f"sources[{n}]"
        if source.asset not in read.versions:
            wrong.append({"rule": SOURCE_NOT_READ, "column": where})
            continue
        used = read.versions[source.asset]
        allowed = used if used is not None else set(versions_had(veil, source.asset))
        if source.version not in allowed:
            wrong.append({"rule": SOURCE_VERSION, "column": where})
    named = {source.asset for source in sources}
    wrong += [
        {"rule": SOURCE_MISSING, "column": "sources", "table": asset}
        for asset in sorted(read.certain - named)
    ]
    if wrong:
        raise Invalid(SOURCE_MESSAGE, wrong, code=SOURCE_REFUSED)


def _provided(veil: Services, caller: Principal) -> set[str]:
    """The assets `caller` provides, destroyed ones too: products built on them stay its to read."""
    if not caller.has("provider"):
        return set()
    store = veil.enclave.store
    cards = {**{a: gone.card for a, gone in store.destroyed().items()}, **store.cards()}
    return {asset for asset, card in cards.items() if card.provider == caller.id}


def _readable(caller: Principal, product: DataProduct, provided: set[str]) -> bool:
    if caller.has("developer") and product.org == caller.org:
        return True
    return bool(provided.intersection(product.assets))


def _receipt(landed: tuple[int, str]) -> dict:
    return {"ledger_index": landed[0], "leaf_hash": landed[1]}

"""Data product descriptions (产品说明) in the control store: what a developer built from released
outputs (its name, scope, date, the asset versions it drew on and the ledger receipts it rests
on), filed once, then perhaps withdrawn; each change is stored only with its ledger record.

What may be filed is decided in services/products.py; this module keeps what was."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from database.turns import prepare_turn, writers_turn
from governance.errors import ControlError, NotFound
from governance.tables import data_products

# Where a change's ledger entry landed: (index, leaf hash).
Landed = tuple[int, str]


class ProductStatus(StrEnum):
    FILED = "filed"  # described and on the record; its developer may withdraw it
    WITHDRAWN = "withdrawn"  # withdrawn by its developer; kept, with who and why


@dataclass(frozen=True)
class Source:
    """One asset a product was built from, and the data version it drew on."""

    asset: str
    version: int

    def as_dict(self) -> dict:
        return {"asset": self.asset, "version": self.version}


@dataclass(frozen=True)
class ReceiptRef:
    """A ledger receipt a product rests on: the entry's index and its leaf hash."""

    ledger_index: int
    leaf_hash: str

    def as_dict(self) -> dict:
        return {"ledger_index": self.ledger_index, "leaf_hash": self.leaf_hash}


@dataclass(frozen=True)
class Withdrawal:
    at: str
    by: str
    reason: str | None
    landed: Landed


@dataclass(frozen=True)
class DataProduct:
    """A filed product description, as stored."""

    id: str
    developer: str
    org: str
    name: str
    description: str
    scope: str
    date: str
    sources: tuple[Source, ...]
    receipts: tuple[ReceiptRef, ...]
    filed_at: str
    content_sha256: str
    # Where its filing entry landed; None only before it is filed.
    filed: Landed | None = None
    status: ProductStatus = ProductStatus.FILED
    withdrawal: Withdrawal | None = None

    @property
    def assets(self) -> list[str]:
        """Its source assets, sorted."""
        return sorted({source.asset for source in self.sources})

    def content(self) -> dict:
        """What was filed, fixed from then on: the object whose canonical JSON's SHA-256 is
        `content_sha256`, which the filing and withdrawal entries carry."""
        return {
            "id": self.id,
            "developer": self.developer,
            "org": self.org,
            "name": self.name,
            "description": self.description,
            "scope": self.scope,
            "date": self.date,
            "sources": [source.as_dict() for source in self.sources],
            "receipts": [receipt.as_dict() for receipt in self.receipts],
            "filed_at": self.filed_at,
        }


class ProductRecords:
    """Product descriptions in the control store; a change and its record are one transaction."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        prepare_turn(engine)

    def file(self, product: DataProduct, record: Callable[[], Landed]) -> DataProduct:
        """Store `product` with the receipt of its filing entry, which `record` writes inside
        the transaction: a product exists only once its entry does, and an entry that cannot be
        written leaves nothing stored."""
        with writers_turn(self.engine), self.engine.begin() as db:
            landed = record()
            db.execute(data_products.insert().values(**_row(product, landed)))
        return replace(product, filed=landed)

    def get(self, product_id: str) -> DataProduct:
        with self.engine.connect() as db:
            row = db.execute(sa.select(data_products).where(data_products.c.id == product_id))
            found = row.first()
        if found is None:
            raise NotFound("no such product")
        return _product(found)

    def listing(self, org: str | None = None) -> list[DataProduct]:
        """Every product (an organisation's, given one), the newest filed first."""
        query = sa.select(data_products).order_by(
            data_products.c.filed_at.desc(), data_products.c.id
        )
        if org is not None:
            query = query.where(data_products.c.org == org)
        with self.engine.connect() as db:
            return [_product(row) for row in db.execute(query)]

    def withdraw(
        self,
        product_id: str,
        *,
        by: str,
        at: str,
        reason: str | None,
        record: Callable[[DataProduct], Landed],
    ) -> DataProduct:
        """Move a filed product to withdrawn, its entry written by `record` inside the
        transaction; NotFound for no such product, ControlError when already withdrawn."""
        with writers_turn(self.engine), self.engine.begin() as db:
            row = db.execute(
                sa.select(data_products).where(data_products.c.id == product_id).with_for_update()
            ).first()
            if row is None:
                raise NotFound("no such product")
            product = _product(row)
            if product.status is not ProductStatus.FILED:
                raise ControlError(f"a {product.status.value} product cannot be withdrawn")
            index, leaf = record(product)
            db.execute(
                data_products.update()
                .where(data_products.c.id == product_id)
                .values(
                    status=ProductStatus.WITHDRAWN.value,
                    withdrawn_at=at,
                    withdrawn_by=by,
                    withdrawal_reason=reason,
                    withdrawn_index=index,
                    withdrawn_leaf_hash=leaf,
                )
            )
        withdrawal = Withdrawal(at, by, reason, (index, leaf))
        return replace(product, status=ProductStatus.WITHDRAWN, withdrawal=withdrawal)


def _row(product: DataProduct, landed: Landed) -> dict:
    return {
        "id": product.id,
        "developer": product.developer,
        "org": product.org,
        "name": product.name,
        "description": product.description,
        "scope": product.scope,
        "product_date": product.date,
        "sources": json.dumps([source.as_dict() for source in product.sources]),
        "receipts": json.dumps([receipt.as_dict() for receipt in product.receipts]),
        "content_sha256": product.content_sha256,
        "filed_at": product.filed_at,
        "filed_index": landed[0],
        "filed_leaf_hash": landed[1],
        "status": ProductStatus.FILED.value,
    }


def _product(row: Any) -> DataProduct:
    withdrawal = None
    if row.withdrawn_at is not None:
        landed = (int(row.withdrawn_index), row.withdrawn_leaf_hash)
        withdrawal = Withdrawal(row.withdrawn_at, row.withdrawn_by, row.withdrawal_reason, landed)
    return DataProduct(
        id=row.id,
        developer=row.developer,
        org=row.org,
        name=row.name,
        description=row.description,
        scope=row.scope,
        date=row.product_date,
        sources=tuple(Source(s["asset"], int(s["version"])) for s in json.loads(row.sources)),
        receipts=tuple(
            ReceiptRef(int(r["ledger_index"]), r["leaf_hash"]) for r in json.loads(row.receipts)
        ),
        filed_at=row.filed_at,
        content_sha256=row.content_sha256,
        filed=(int(row.filed_index), row.filed_leaf_hash),
        status=ProductStatus(row.status),
        withdrawal=withdrawal,
    )

"""Product descriptions in the control store, on SQLite and PostgreSQL: a product is stored only
with its filing record, listed newest first (an organisation's alone when asked), and withdrawn
once, with its record, by the one transition there is."""

from __future__ import annotations

import pytest

from governance import ControlError, NotFound
from governance.products import (
    DataProduct,
    ProductRecords,
    ProductStatus,
    ReceiptRef,
    Source,
)


class RecordFailed(Exception):
    pass


def _product(product_id: str, org: str = "acme", filed_at: str = "2026-12-01T00:00:00Z"):
    return DataProduct(
        id=product_id,
        developer="analyst",
        org=org,
        name="District burden 2026",
        description="Outpatient cost by district, 数据产品",
        scope="Fuzhou districts, 2026",
        date="2026-12-01",
        sources=(Source("hospital.visits", 1), Source("insurance.claims", 2)),
        receipts=(ReceiptRef(16, "a" * 64), ReceiptRef(17, "b" * 64)),
        filed_at=filed_at,
        content_sha256="c" * 64,
    )


def _failing(*_: object) -> tuple[int, str]:
    raise RecordFailed


def test_a_product_is_stored_with_its_record_and_read_back_whole(store) -> None:
    products = ProductRecords(store.engine)
    filed = products.file(_product("p_1"), lambda: (40, "d" * 64))
    assert filed.filed == (40, "d" * 64)
    read = products.get("p_1")
    assert read == filed
    assert read.status is ProductStatus.FILED and read.withdrawal is None
    assert read.assets == ["hospital.visits", "insurance.claims"]
    assert read.content()["sources"] == [
        {"asset": "hospital.visits", "version": 1},
        {"asset": "insurance.claims", "version": 2},
    ]
    with pytest.raises(NotFound):
        products.get("p_2")


def test_a_record_that_fails_leaves_nothing_stored(store) -> None:
    products = ProductRecords(store.engine)
    with pytest.raises(RecordFailed):
        products.file(_product("p_1"), _failing)
    assert products.listing() == []
    products.file(_product("p_1"), lambda: (1, "d" * 64))
    with pytest.raises(RecordFailed):
        products.withdraw("p_1", by="analyst", at="2026-12-02T00:00:00Z", reason=None,
                          record=_failing)  # fmt: skip
    assert products.get("p_1").status is ProductStatus.FILED


def test_listing_is_newest_first_and_by_organisation(store) -> None:
    products = ProductRecords(store.engine)
    products.file(_product("p_1", "acme", "2026-12-01T00:00:00Z"), lambda: (1, "d" * 64))
    products.file(_product("p_2", "other", "2026-12-03T00:00:00Z"), lambda: (2, "d" * 64))
    products.file(_product("p_3", "acme", "2026-12-02T00:00:00Z"), lambda: (3, "d" * 64))
    assert [p.id for p in products.listing()] == ["p_2", "p_3", "p_1"]
    assert [p.id for p in products.listing(org="acme")] == ["p_3", "p_1"]
    assert products.listing(org="nobody") == []


def test_a_product_is_withdrawn_once_with_its_record(store) -> None:
    products = ProductRecords(store.engine)
    products.file(_product("p_1"), lambda: (1, "d" * 64))
    seen: list[DataProduct] = []

    def record(product: DataProduct) -> tuple[int, str]:
        seen.append(product)
        return 9, "e" * 64

    withdrawn = products.withdraw("p_1", by="analyst", at="2026-12-02T00:00:00Z",
                                  reason="superseded", record=record)  # fmt: skip
    assert [p.status for p in seen] == [ProductStatus.FILED]
    assert withdrawn.status is ProductStatus.WITHDRAWN
    assert products.get("p_1") == withdrawn
    assert withdrawn.withdrawal is not None
    assert (withdrawn.withdrawal.by, withdrawn.withdrawal.reason) == ("analyst", "superseded")
    assert withdrawn.withdrawal.landed == (9, "e" * 64)
    # What was filed does not change with its withdrawal.
    assert withdrawn.content() == _product("p_1").content()
    with pytest.raises(ControlError, match="withdrawn product"):
        products.withdraw("p_1", by="analyst", at="x", reason=None, record=record)
    assert len(seen) == 1
    with pytest.raises(NotFound):
        products.withdraw("p_9", by="analyst", at="x", reason=None, record=record)

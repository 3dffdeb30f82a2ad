"""What a product's sources are checked against when ledger entries record the data versions
they used: a version the receipts recorded binds the source, and a receipt that recorded none
leaves any version the asset has had (checked over HTTP in tests/gateway/test_products.py)."""

from __future__ import annotations

import pytest

from governance.products import Source
from services.errors import Invalid
from services.products import Reads, _check_sources


def _read(*recorded: dict) -> Reads:
    read = Reads()
    for versions in recorded:
        read.add(Reads(versions=dict(versions), certain=set(versions)))
    return read


def test_recorded_versions_bind_each_source() -> None:
    read = _read({"a.visits": {2}}, {"a.visits": {3}, "b.claims": {1}})
    assert read.versions == {"a.visits": {2, 3}, "b.claims": {1}}
    _check_sources(None, (Source("a.visits", 3), Source("b.claims", 1)), read)  # type: ignore[arg-type]
    with pytest.raises(Invalid) as refused:
        _check_sources(None, (Source("a.visits", 1), Source("b.claims", 1)), read)  # type: ignore[arg-type]
    assert refused.value.code == "SOURCE_REFUSED"
    assert refused.value.violations == [{"rule": "source_version", "column": "sources[0]"}]


def test_a_receipt_without_versions_leaves_the_asset_unbound() -> None:
    read = _read({"a.visits": {2}}, {"a.visits": None})
    assert read.versions == {"a.visits": None}
    assert _read({"a.visits": None}, {"a.visits": {2}}).versions == {"a.visits": None}

"""The enclave's plan cache: the same text over the same assets is checked once, and any change
to the assets checks it again."""

from __future__ import annotations

import pytest

from sandbox.enclave import PLANS_PER_CACHE, Enclave
from sandbox.errors import AssetGone
from sandbox.worker import WorkerConfig
from tests.sandbox.test_dominance import LOYALTY, SALES

SQL = "SELECT region, COUNT(*) AS n FROM shop.sales GROUP BY region"


@pytest.fixture
def enclave(tmp_path):
    source = tmp_path / "sales.csv"
    source.write_text("customer,region,amount\n" + "c1,north,1\n" * 3)
    enclave = Enclave(tmp_path / "assets", tmp_path / "keyring", b"m" * 32, WorkerConfig())
    enclave.store.register(SALES, source)
    yield enclave, tmp_path
    enclave.close()


def test_a_repeated_query_is_checked_once_and_rechecked_after_any_change(enclave) -> None:
    enclave, folder = enclave
    first = enclave.analyse(SQL)
    assert enclave.analyse(SQL) is first
    assert first.compiled.sql(10) is first.compiled.sql(10)  # generated once per threshold
    loyalty = folder / "loyalty.csv"
    loyalty.write_text("member,tier\nc1,gold\n")
    enclave.store.register(LOYALTY, loyalty)
    assert enclave.analyse(SQL) is not first
    enclave.store.destroy("shop.sales")
    with pytest.raises(AssetGone):
        enclave.analyse(SQL)


def test_each_principal_has_plans_of_its_own(enclave) -> None:
    """Whether a text was checked before (a cache hit is fast) says nothing of another
    principal's queries, nor of a held job's: its plans are kept nowhere."""
    enclave, _ = enclave
    mine = enclave.analyse(SQL, cache="analyst")
    assert enclave.analyse(SQL, cache="analyst") is mine
    assert enclave.analyse(SQL, cache="fintech") is not mine
    assert enclave.analyse(SQL, cache=None) is not enclave.analyse(SQL, cache=None)
    for n in range(PLANS_PER_CACHE * 2):  # another principal fills its own cache to the brim
        enclave.analyse(f"{SQL} LIMIT {n + 1}", cache="fintech")
    assert enclave.analyse(SQL, cache="analyst") is mine

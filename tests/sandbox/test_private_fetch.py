"""Whether a private answer's groups fit in what a worker returns is decided before it runs,
from public facts alone: never from how many groups the data turns out to have."""

from __future__ import annotations

import pytest

from sandbox.enclave import Enclave
from sandbox.errors import QueryRejected
from sandbox.privacy.answer import Budget
from sandbox.privacy.terms import Contribution
from sandbox.worker import WorkerConfig
from tests.sandbox.test_dominance import SALES

FETCHED = 50
REGIONS = ["north", "south"]
PUBLIC = {
    **SALES,
    "id": "shop.public",
    "columns": [
        {**SALES["columns"][0]},
        {"name": "region", "type": "VARCHAR", "role": "dimension", "domain": REGIONS},
        {**SALES["columns"][2]},
    ],
}


@pytest.fixture(scope="module")
def enclave(tmp_path_factory):
    """Two assets of 60 rows (more than a worker returns) in just two regions."""
    folder = tmp_path_factory.mktemp("fetch")
    source = folder / "sales.csv"
    rows = "".join(f"c{i},{REGIONS[i % 2]},{i}\n" for i in range(FETCHED + 10))
    source.write_text("customer,region,amount\n" + rows)
    config = WorkerConfig(max_fetch_rows=FETCHED)
    enclave = Enclave(folder / "assets", folder / "keyring", b"m" * 32, config, workers=1)
    enclave.store.register(SALES, source)
    enclave.store.register(PUBLIC, source)
    yield enclave
    enclave.close()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT region, COUNT(*) FROM shop.sales GROUP BY region",
        # The filter leaves one region; what the data holds does not enter the decision.
        "SELECT region, COUNT(*) FROM shop.sales WHERE region = 'north' GROUP BY region",
        "SELECT MEDIAN(amount) FROM shop.sales",  # a histogram of every candidate value
    ],
)
def test_groups_that_might_not_fit_are_refused_before_running(enclave, sql: str) -> None:
    with pytest.raises(QueryRejected) as refused:
        enclave.private(enclave.analyse(sql), Contribution())
    assert [v.rule for v in refused.value.violations] == ["too_many_groups"]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT region, COUNT(*), SUM(amount) FROM shop.public GROUP BY region",
        "SELECT COUNT(*) FROM shop.sales",
    ],
)
def test_groups_public_facts_bound_are_answered(enclave, sql: str) -> None:
    private = enclave.private(enclave.analyse(sql), Contribution())
    answered, _ = enclave.run_private(private, Budget(1.0, 1e-7))
    assert answered.released.rows


def test_an_outer_joins_unmatched_rows_are_counted_before_running(tmp_path) -> None:
    """A full outer join of 50 rows with one row makes 50 groups when that row's person is
    among the 50 and 51 when not: both are refused before running, so the refusal says
    nothing of whether they are (the red team's membership bit)."""
    fifty = tmp_path / "fifty.csv"
    fifty.write_text("customer,region,amount\n" + "".join(f"c{i},r{i},1\n" for i in range(50)))
    enclave = Enclave(tmp_path / "assets", tmp_path / "keyring", b"m" * 32,
                      WorkerConfig(max_fetch_rows=FETCHED), workers=1)  # fmt: skip
    try:
        enclave.store.register(SALES, fifty)
        for asset, person in (("shop.one_in", "c7"), ("shop.one_out", "zz")):
            one = tmp_path / f"{asset}.csv"
            one.write_text(f"customer,region,amount\n{person},x,1\n")
            enclave.store.register({**SALES, "id": asset}, one)
            sql = (f"SELECT b.region, COUNT(*) FROM {asset} a FULL OUTER JOIN shop.sales b "
                   "ON a.customer = b.customer GROUP BY b.region")  # fmt: skip
            with pytest.raises(QueryRejected) as refused:
                enclave.private(enclave.analyse(sql), Contribution())
            assert [v.rule for v in refused.value.violations] == ["too_many_groups"]
    finally:
        enclave.close()

"""Settlements and usage replayed from entries: period filter, exact totals, corrupt postings."""

import pytest

from ledger import LedgerError, settle, usage
from ledger.settlements import period_of


def charged(index: int, at: str, amount: int, developer: str = "dev", currency: str = "CNY"):
    share = amount * 7 // 10
    return index, {
        "type": "query",
        "query_id": f"q{index}",
        "principal": developer,
        "at": at,
        "outcome": "released",
        "assets": ["a.b"],
        "usage": {"rows_scanned": {"a.b": 1000}, "cpu_ms": 5, "bytes_returned": 40},
        "cost": {"amount_minor": amount, "currency": currency, "plan": "standard"},
        "postings": [[f"developer:{developer}", -amount], ["party:hosp", share],
                     ["party:operator", amount - share]] if amount else [],
    }  # fmt: skip


ENTRIES = [
    (0, {"type": "principal_created", "at": "2026-11-01T00:00:00Z"}),
    charged(1, "2026-10-31T23:59:59Z", 500),
    charged(2, "2026-11-01T00:00:00Z", 100),
    charged(3, "2026-11-15T12:00:00Z", 33, developer="other"),
    charged(4, "2026-11-30T23:59:59Z", 0),
    (5, {"type": "query", "principal": "dev", "at": "2026-11-02T00:00:00Z", "outcome": "denied"}),
    charged(6, "2026-12-01T00:00:00Z", 7),
]


def test_a_month_settles_exactly() -> None:
    settlement = settle(ENTRIES, "2026-11")
    assert settlement.charged == {"CNY": 133}
    assert settlement.parties["CNY"] == {"hosp": 70 + 23, "operator": 30 + 10}
    assert settlement.developers["CNY"] == {"dev": 100, "other": 33}
    assert [line.index for line in settlement.lines] == [2, 2, 2, 3, 3, 3]


def test_other_months_and_currencies_stay_apart() -> None:
    assert settle(ENTRIES, "2026-10").charged == {"CNY": 500}
    assert settle(ENTRIES, "2025-11").charged == {}
    mixed = settle([*ENTRIES, charged(7, "2026-11-03T00:00:00Z", 9, currency="USD")], "2026-11")
    assert mixed.charged == {"CNY": 133, "USD": 9}


@pytest.mark.parametrize(
    "postings",
    [[["developer:dev", -100], ["party:hosp", 99]], [["developer:dev", -100], ["party:hosp", 101]],
     [["party:hosp", 100], ["party:x", -100]], [["developer:dev", -100.0], ["party:hosp", 100.0]],
     "developer:dev", [["developer:dev"]], None],
)  # fmt: skip
def test_unbalanced_or_malformed_postings_stop_the_settlement(postings) -> None:
    index, data = charged(2, "2026-11-01T00:00:00Z", 100)
    with pytest.raises(LedgerError) as caught:
        settle([(index, {**data, "postings": postings})], "2026-11")
    assert caught.value.code == "LEDGER_CORRUPT"


@pytest.mark.parametrize("period", ["2026-13", "2026-1", "26-11", "2026-11-01", ""])
def test_period_is_a_month(period: str) -> None:
    with pytest.raises(LedgerError):
        settle(ENTRIES, period)


def test_usage_lists_what_the_caller_may_see() -> None:
    mine = usage(ENTRIES, "2026-11", lambda data: data.get("principal") == "dev")
    assert [line.index for line in mine.lines] == [2, 4, 5]
    assert mine.outcomes == {"released": 2, "denied": 1}
    assert mine.charged == {"CNY": 100}
    # CPU is shown at the billing step: 5 ms twice is two steps of 100.
    assert mine.totals == {"rows_scanned": 2000, "cpu_ms": 200, "bytes_returned": 80}
    everyone = usage(ENTRIES, "2026-11", lambda data: True)
    assert [line.index for line in everyone.lines] == [2, 3, 4, 5]


@pytest.mark.parametrize(
    ("at", "period"),
    [("2026-11-30T23:59:59Z", "2026-11"), ("2026-01-01", "2026-01"), ("2026-13-01T00:00Z", None),
     ("2026-11", None), (None, None), (20261101, None), ("x2026-11-01", None)],
)  # fmt: skip
def test_period_of_an_entry_is_the_month_of_its_time(at: object, period: str | None) -> None:
    assert period_of({"at": at}) == period

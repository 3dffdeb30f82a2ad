"""Settlements: a period's charges and each party's share, recomputed by replaying the log."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from ledger.errors import InvalidRange, LedgerCorrupt
from ledger.postings import PAYEE, PAYER

PERIOD = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")
_MONTH_OF_TIME = re.compile(r"(\d{4}-(0[1-9]|1[0-2]))-")


@dataclass(frozen=True)
class PostingLine:
    """One posting of one entry, as finance exports it."""

    index: int
    at: str
    reference: str
    account: str
    amount_minor: int
    currency: str


@dataclass
class Settlement:
    """What one period's entries charged, who paid and who receives, per currency."""

    period: str
    charged: Counter[str] = field(default_factory=Counter)
    parties: dict[str, Counter[str]] = field(default_factory=dict)
    developers: dict[str, Counter[str]] = field(default_factory=dict)
    lines: list[PostingLine] = field(default_factory=list)


def check_period(period: str) -> str:
    if not isinstance(period, str) or not PERIOD.fullmatch(period):
        raise InvalidRange("a period is a month, YYYY-MM")
    return period


def period_of(entry: dict) -> str | None:
    """The month (YYYY-MM) an entry belongs to: the start of its "at" time, if it has one."""
    at = entry.get("at")
    match = _MONTH_OF_TIME.match(at) if isinstance(at, str) else None
    return match.group(1) if match else None


def settle(entries: Iterable[tuple[int, dict]], period: str) -> Settlement:
    """Replay `entries` (index, parsed data) in order; charged entries `at` in `period` count.

    Every charged entry must carry balanced postings whose credits equal its cost; one that
    does not means the log was written wrongly, and no settlement is made from it.
    """
    settlement = Settlement(check_period(period))
    for index, data in entries:
        if data.get("cost") is None or period_of(data) != period:
            continue
        lines = posting_lines(index, data)
        currency = data["cost"]["currency"]
        settlement.charged[currency] += data["cost"]["amount_minor"]
        for line in lines:
            side, name = (
                (settlement.developers, line.account.removeprefix(PAYER))
                if line.account.startswith(PAYER)
                else (settlement.parties, line.account.removeprefix(PAYEE))
            )
            side.setdefault(currency, Counter())[name] += abs(line.amount_minor)
        settlement.lines.extend(lines)
    return settlement


def posting_lines(index: int, data: dict) -> list[PostingLine]:
    """A charged entry's postings, checked: they balance and their credits equal its cost."""
    problem = f"entry {index} has a cost its postings do not balance"
    cost, postings, at = data.get("cost"), data.get("postings"), str(data.get("at"))
    if not isinstance(cost, dict) or not isinstance(postings, list):
        raise LedgerCorrupt(problem)
    amount, currency = cost.get("amount_minor"), cost.get("currency")
    if type(amount) is not int or amount < 0 or not isinstance(currency, str):
        raise LedgerCorrupt(problem)
    reference = str(data.get("query_id") or data.get("job_id") or "")
    lines = []
    for posting in postings:
        if not (isinstance(posting, list) and len(posting) == 2):
            raise LedgerCorrupt(problem)
        account, minor = posting
        if not isinstance(account, str) or type(minor) is not int:
            raise LedgerCorrupt(problem)
        if not account.startswith(PAYEE if minor > 0 else PAYER):
            raise LedgerCorrupt(problem)
        lines.append(PostingLine(index, at, reference, account, minor, currency))
    credits = sum(line.amount_minor for line in lines if line.amount_minor > 0)
    if sum(line.amount_minor for line in lines) != 0 or credits != amount:
        raise LedgerCorrupt(problem)
    return lines

"""Usage reports: a period's metered requests, replayed from the log, as a caller may see them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ledger.pricing import billed_cpu_ms
from ledger.settlements import check_period, period_of

METERED_TYPES = frozenset({"query", "job"})
# One principal's refusals past its rate in one window, counted instead of appended one by one
# (services/refusals.py); its rows of metered types count as requests with their outcome.
REFUSALS_SUMMARISED = "refusals_summarised"


@dataclass(frozen=True)
class UsageLine:
    index: int
    at: str
    principal: str
    reference: str
    outcome: str
    assets: tuple[str, ...]
    rows_scanned: int
    cpu_ms: int
    bytes_returned: int
    amount_minor: int
    currency: str | None


@dataclass
class Usage:
    period: str
    outcomes: Counter[str] = field(default_factory=Counter)
    charged: Counter[str] = field(default_factory=Counter)
    lines: list[UsageLine] = field(default_factory=list)
    # Refusals counted in summaries, by outcome: requests with no line of their own.
    summarised: Counter[str] = field(default_factory=Counter)

    @property
    def requests(self) -> int:
        """Every metered request: one per line, and each refusal a summary counts."""
        return len(self.lines) + sum(self.summarised.values())

    @property
    def totals(self) -> dict[str, int]:
        return {
            "rows_scanned": sum(line.rows_scanned for line in self.lines),
            "cpu_ms": sum(line.cpu_ms for line in self.lines),
            "bytes_returned": sum(line.bytes_returned for line in self.lines),
        }


def usage(
    entries: Iterable[tuple[int, dict]], period: str, visible: Callable[[dict], bool]
) -> Usage:
    """The metered entries `at` in `period` that `visible` lets the caller see, oldest first."""
    report = Usage(check_period(period))
    for index, data in entries:
        if data.get("type") == REFUSALS_SUMMARISED and period_of(data) == period:
            if visible(data):
                _count_summary(report, data)
            continue
        if data.get("type") not in METERED_TYPES or period_of(data) != period:
            continue
        if not visible(data):
            continue
        used = data.get("usage") or {}
        cost = data.get("cost") or {}
        line = UsageLine(
            index=index,
            at=data["at"],
            principal=str(data.get("principal")),
            reference=str(data.get("query_id") or data.get("job_id") or ""),
            outcome=str(data.get("outcome")),
            assets=tuple(data.get("assets") or ()),
            rows_scanned=sum((used.get("rows_scanned") or {}).values()),
            # At the billing step, whatever an older entry recorded.
            cpu_ms=billed_cpu_ms(int(used.get("cpu_ms") or 0)),
            bytes_returned=int(used.get("bytes_returned") or 0),
            amount_minor=int(cost.get("amount_minor") or 0),
            currency=cost.get("currency"),
        )
        report.outcomes[line.outcome] += 1
        if line.currency:
            report.charged[line.currency] += line.amount_minor
        report.lines.append(line)
    return report


def _count_summary(report: Usage, data: dict) -> None:
    """A summary's refusals of metered requests, counted by outcome as their lines would be."""
    for row in data.get("counts") or ():
        if isinstance(row, dict) and row.get("record") in METERED_TYPES:
            refused = int(row.get("refusals") or 0)
            report.outcomes[str(row.get("outcome"))] += refused
            report.summarised[str(row.get("outcome"))] += refused

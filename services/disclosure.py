"""The public disclosure report: what each asset was used for in a month, for anyone to read."""

from __future__ import annotations

from datetime import UTC, datetime

from governance.registrations import State
from ledger import disclose
from ledger.disclosure import MIN_DEVELOPERS
from services.runtime import Services


def disclosure_report(veil: Services, *, period: str | None) -> dict:
    """Per asset: grants in use, developers, completed queries and jobs, and revenue, as of the
    newest signed checkpoint; names no developer, and withholds an asset's figures when fewer
    than a few developers used it; and the registrations under public notice."""
    month = period or datetime.now(UTC).strftime("%Y-%m")
    size = veil.ledger.checkpoint().tree_size
    report = disclose(veil.ledger.replay(month, size), month)
    return {
        "period": month,
        "tree_size": size,
        "min_developers": MIN_DEVELOPERS,
        "assets": report.report(),
        "notices": notices(veil),
    }


def notices(veil: Services) -> list[dict]:
    """Registrations under public notice, open to objections: public by their nature."""
    return [
        {
            "registration": r.id,
            "asset": r.asset,
            "kind": r.kind.value,
            "holder": r.holder,
            "notice_until": r.notice_until,
            "objections": len(r.objections),
        }
        for r in veil.registrations.all()
        if r.state is State.NOTICE
    ]

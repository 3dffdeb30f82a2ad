"""What a policy denial of a query names: the tables and columns of the caller's own query that
none of the caller's own grants covers. Both are the caller's to know, so naming them tells it
nothing of anyone's data or anyone else's grants."""

from __future__ import annotations

from governance import Grant, utc_now
from sandbox.guard import Analysis

ASSET_NOT_GRANTED = "asset_not_granted"
COLUMN_NOT_GRANTED = "column_not_granted"


def denial(
    reasons: tuple[str, ...] | list[str],
    analysis: Analysis,
    grants: list[Grant],
    grant_id: str | None,
) -> tuple[str, list[dict]]:
    """The message and violations of a denial: each reason, with the tables or columns it is
    about where the caller's grants say which (a grant it named, or any of its grants)."""
    now = utc_now()
    considered = [g for g in grants if grant_id in (None, g.id) and g.in_force(now)]
    ungranted = [a for a in analysis.assets if not any(a in g.assets for g in considered)]
    narrowed = [
        (asset, column)
        for asset, columns in analysis.columns.items()
        if asset not in ungranted
        for column in columns
        if not any(grant.covers(asset, column) for grant in considered)
    ]
    violations: list[dict] = []
    said: list[str] = []
    for reason in reasons:
        if reason == ASSET_NOT_GRANTED and ungranted:
            violations += [{"rule": reason, "table": asset} for asset in ungranted]
            said += [f'"{asset}" is not in a grant of yours' for asset in ungranted]
        elif reason == COLUMN_NOT_GRANTED and narrowed:
            violations += [{"rule": reason, "table": a, "column": c} for a, c in narrowed]
            said += [f'column "{c}" of "{a}" is not in your grant' for a, c in narrowed]
        else:
            violations.append({"rule": reason})
    message = "the policy does not allow this query"
    return (f"{message}: {'; '.join(said)}" if said else message), violations

"""Dominance columns: how far each released row's sums and means rest on its largest units.

A sum over ten people can still be one person's figure when that person's contribution
dwarfs the rest; the (n, k) and p% rules judge that from each unit's own total. The enclave
computes, for every released row, a contribution per unit (all of the unit's rows in the
group, so one person cannot hide behind many small rows) and from them two shares:

- `veil_top_share`: the n largest contributions' part of the whole (the (n, k) rule fails
  when it exceeds k);
- `veil_top_lead`: the largest contribution's part of everything but the second largest,
  which is what the second largest contributor could subtract its own figure from (the p%
  rule fails when the rest is below p of the largest, that is when this exceeds 1/(1+p)).

Both are in [0, 1], the worst over every SUM and AVG in the row and over every asset's units.
They never leave the enclave's caller; they decide what is withheld.

A withheld sum must not come back through which rows exist or where they stand, so a query
judged this way may not filter on a sum or mean (HAVING) nor order or page its rows.
"""

from __future__ import annotations

import functools

from sqlglot import exp

from sandbox.errors import Violation
from sandbox.guard.syntax import DIALECT, data_type

SHARE_COLUMN = "veil_top_share"
LEAD_COLUMN = "veil_top_lead"
DOMINANCE_COLUMNS = (SHARE_COLUMN, LEAD_COLUMN)
MAGNITUDES = (exp.Sum, exp.Avg)
_KEY = "veil_k"
_CONTRIBUTION = "veil_c"
_SHARE = "CASE WHEN SUM({c}) > 0 THEN LIST_SUM(MAX({c}, {n})) / SUM({c}) ELSE 0 END"
# The largest over everything but the second largest: the second largest is
# LIST_SUM(MAX(c, 2)) - MAX(c), so the denominator is the total less that.
_LEAD = (
    "CASE WHEN SUM({c}) - LIST_SUM(MAX({c}, 2)) + MAX({c}) > 0 "
    "THEN MAX({c}) / (SUM({c}) - LIST_SUM(MAX({c}, 2)) + MAX({c})) ELSE 0 END"
)


def is_magnitude(projection: exp.Expression) -> bool:
    """Whether a released column is computed from a SUM or AVG, so dominance applies to it."""
    return projection.find(*MAGNITUDES) is not None


def magnitude_channels(tree: exp.Query, limit: int | None, offset: int) -> list[Violation]:
    """What in a query would let a withheld sum or mean show through other rows."""
    violations = []
    if tree.args.get("order") is not None or limit is not None or offset:
        violations.append(Violation("order_with_dominance"))
    for select in tree.find_all(exp.Select):
        having = select.args.get("having")
        if having is not None and having.find(*MAGNITUDES) is not None:
            violations.append(Violation("magnitude_in_having"))
            break
    return violations


def add_dominance(select: exp.Select, units: exp.Expression, top: int) -> None:
    """Append the two dominance columns to a released aggregate select.

    `units` is the select's distinct-unit count, whose COUNT(DISTINCT …) arguments are the
    columns carrying each asset's privacy unit. For each of them a grouped subquery over the
    same FROM, joins and WHERE gives every group's shares; it is joined back on the group
    keys, one row per group, so the select's own aggregates see each row exactly once.
    """
    measures = [agg.this for p in select.expressions for agg in p.find_all(*MAGNITUDES)]
    if not measures:
        zero = exp.Literal.number(0)
        select.select(exp.alias_(zero, SHARE_COLUMN), exp.alias_(zero.copy(), LEAD_COLUMN),
                      copy=False)  # fmt: skip
        return
    group = select.args.get("group")
    keys = list(group.expressions) if group is not None else []
    sources = [count.this.expressions[0] for count in units.find_all(exp.Count)]
    shares = [_per_group(select, keys, measures, source, top) for source in sources]
    for i, subquery in enumerate(shares):
        name = f"veil_d{i}"
        matches = [
            exp.NullSafeEQ(this=key.copy(), expression=exp.column(f"{_KEY}{j}", table=name))
            for j, key in enumerate(keys)
        ]
        on = exp.and_(*matches) if matches else exp.true()
        select.join(_subquery(subquery, name), on=on, join_type="LEFT", copy=False)
    for column in DOMINANCE_COLUMNS:
        # One row per group on the right, so MAX only takes the group's single value.
        worst = [exp.Max(this=exp.column(column, table=f"veil_d{i}")) for i in range(len(shares))]
        select.select(exp.alias_(_greatest(worst), column), copy=False)


def _per_group(
    select: exp.Select,
    keys: list[exp.Expression],
    measures: list[exp.Expression],
    unit: exp.Expression,
    top: int,
) -> exp.Select:
    """Each group's dominance shares, judged on every unit's own contribution to each measure."""
    contributions = exp.select(
        *(exp.alias_(key, f"{_KEY}{j}") for j, key in enumerate(keys)),
        *(
            exp.alias_(
                exp.Abs(this=_double(exp.Sum(this=m.copy()))), f"{_CONTRIBUTION}{i}", copy=False
            )
            for i, m in enumerate(measures)
        ),
    )
    contributions.set("from_", select.args["from_"].copy())
    contributions.set("joins", [join.copy() for join in select.args.get("joins") or []])
    if select.args.get("where") is not None:
        contributions.set("where", select.args["where"].copy())
    contributions.group_by(*(key.copy() for key in keys), unit.copy(), copy=False)
    shares, leads = [], []
    for i in range(len(measures)):
        column = f"{_CONTRIBUTION}{i}"
        shares.append(_parsed(_SHARE.format(c=column, n=top)).copy())
        leads.append(_parsed(_LEAD.format(c=column)).copy())
    grouped = exp.select(
        *(exp.column(f"{_KEY}{j}") for j in range(len(keys))),
        exp.alias_(_greatest(shares), SHARE_COLUMN),
        exp.alias_(_greatest(leads), LEAD_COLUMN),
    ).from_(_subquery(contributions, "veil_per_unit"))
    if keys:
        grouped.group_by(*(exp.column(f"{_KEY}{j}") for j in range(len(keys))), copy=False)
    return grouped


@functools.cache
def _parsed(text: str) -> exp.Expression:
    return exp.maybe_parse(text, dialect=DIALECT)


def _subquery(select: exp.Select, alias: str) -> exp.Subquery:
    return exp.Subquery(this=select, alias=exp.TableAlias(this=exp.to_identifier(alias)))


def _double(node: exp.Expression) -> exp.Expression:
    return exp.TryCast(this=node, to=data_type("DOUBLE"))


def _greatest(values: list[exp.Expression]) -> exp.Expression:
    return values[0] if len(values) == 1 else exp.Greatest(this=values[0], expressions=values[1:])

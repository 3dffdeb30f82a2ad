"""Column names a query uses that the tables it reads do not have, or have more than once.

Whether a name is unknown depends only on public things: the catalogue's cards and the
query's own text (its aliases and subqueries). Names are told back as the client wrote them.
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.optimizer.scope import Scope, traverse_scope

from sandbox.cards import AssetCard
from sandbox.errors import Violation
from sandbox.guard.analysis import asset_id
from sandbox.guard.vocabulary import echoed


def unresolved(tree: exp.Query, cards: dict[str, AssetCard]) -> list[Violation]:
    """Unknown and ambiguous columns of an unqualified tree, each once; empty when the names
    are all known (what failed is something else)."""
    found: list[Violation] = []
    for scope in traverse_scope(tree):
        select = scope.expression
        if not isinstance(select, exp.Select):
            continue
        offered = {
            alias.lower(): _offered(source, cards) for alias, source in scope.sources.items()
        }
        aliases = {p.alias.lower() for p in select.expressions if isinstance(p, exp.Alias)}
        own = aliases | set(offered)
        for column in scope.columns:
            violation = _check(column, offered, own)
            if violation is not None and violation not in found:
                found.append(violation)
    return found


def written_names(tree: exp.Expression) -> dict[str, str]:
    """Each column name as the client first wrote it, by the name it resolves to."""
    written: dict[str, str] = {}
    for column in tree.find_all(exp.Column):
        written.setdefault(column.name.lower(), echoed(column.name))
    return written


def _check(
    column: exp.Column, offered: dict[str, frozenset[str] | None], own: set[str]
) -> Violation | None:
    name, qualifier = column.name.lower(), column.table.lower()
    if qualifier:
        if qualifier not in offered:
            return Violation("unknown_column", echoed(f"{column.table}.{column.name}"))
        names = offered[qualifier]
        if names is not None and name not in names:
            return Violation("unknown_column", echoed(f"{column.table}.{column.name}"))
        return None
    if name in own or any(names is None for names in offered.values()):
        return None  # an output alias, a whole row, or a source whose columns are not listed
    holders = [alias for alias, names in offered.items() if names is not None and name in names]
    if not holders:
        return Violation("unknown_column", echoed(column.name))
    if len(holders) > 1:
        return Violation("ambiguous_column", echoed(column.name))
    return None


def _offered(source: exp.Expression | Scope, cards: dict[str, AssetCard]) -> frozenset[str] | None:
    """The column names a source offers, or None when they cannot be listed."""
    if isinstance(source, exp.Table):
        card = cards.get(asset_id(source))
        return frozenset(c.name.lower() for c in card.columns) if card is not None else None
    query = source.expression
    if not isinstance(query, exp.Query) or any(
        isinstance(p, exp.Star) or (isinstance(p, exp.Column) and p.is_star) for p in query.selects
    ):
        return None
    return frozenset(name.lower() for name in query.named_selects)

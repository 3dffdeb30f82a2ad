"""Where a released select's columns come from: card columns, and whether one unit owns each row."""

from __future__ import annotations

from sqlglot import exp
from sqlglot.optimizer.scope import Scope

from sandbox.cards import AssetCard, Column, Role
from sandbox.guard.analysis import asset_id


def origin(column: exp.Column, scope: Scope, cards: dict[str, AssetCard]) -> Column | None:
    """The card column a column passes through unchanged, or None for a computed one."""
    source = scope.sources.get(column.table)
    if isinstance(source, exp.Table):
        return cards[asset_id(source)].column(column.name)
    if isinstance(source, Scope):
        for projection in source.expression.selects:
            if projection.alias_or_name != column.name:
                continue
            inner = projection.this if isinstance(projection, exp.Alias) else projection
            if isinstance(inner, exp.Column):
                return origin(inner, source, cards)
            return None
    return None


def one_unit_per_row(scope: Scope, cards: dict[str, AssetCard]) -> bool:
    """Whether every row of the scope belongs to one privacy unit: each source does, and joins
    on privacy-unit columns connect them all, so every unit column a row carries is that
    unit or NULL. A table whose card states it holds no personal data joins as it may (on a
    join key): its rows are nobody's."""
    return _unit_columns(scope, cards, impersonal(scope, cards)) is not None


def impersonal(scope: Scope, cards: dict[str, AssetCard]) -> set[str]:
    """Aliases of the scope's own tables that hold no personal data, unless every table does
    not: then their units are the ones to bound."""
    tables = {
        alias: cards[asset_id(source)]
        for alias, (_, source) in scope.selected_sources.items()
        if isinstance(source, exp.Table)
    }
    found = {alias for alias, card in tables.items() if card.rights.personal_data is False}
    everything = len(found) == len(scope.selected_sources)
    return set() if everything else found


def _unit_columns(
    scope: Scope, cards: dict[str, AssetCard], skipped: set[str] | frozenset[str] = frozenset()
) -> set[tuple[str, str]] | None:
    """The (source alias, column) pairs equal to the row's unit, or None when rows of the scope
    can carry two units (a join on anything but the privacy unit)."""
    sources = scope.selected_sources
    equal: dict[str, set[tuple[str, str]]] = {}
    for alias, (_, source) in sources.items():
        if alias in skipped:
            continue
        if isinstance(source, exp.Table):
            equal[alias] = {(alias, cards[asset_id(source)].privacy_unit.name)}
        elif isinstance(source, Scope):
            if not isinstance(source.expression, exp.Select):
                return None
            inner = _unit_columns(source, cards)
            if inner is None:
                return None
            equal[alias] = {(alias, name) for name in _passed_through(source, inner)}
        else:
            return None
    groups = {alias: {alias} for alias in equal}
    for join in scope.expression.args.get("joins") or []:
        condition = join.args.get("on")
        parts = condition.flatten() if isinstance(condition, exp.And) else [condition]
        for part in parts:
            while isinstance(part, exp.Paren):
                part = part.this
            if not (isinstance(part, exp.EQ) and isinstance(part.this, exp.Column)):
                continue
            left, right = part.this, part.expression
            if not isinstance(right, exp.Column):
                continue
            pair_left, pair_right = (left.table, left.name), (right.table, right.name)
            if pair_left in equal.get(left.table, ()) and pair_right in equal.get(right.table, ()):
                merged = groups[left.table] | groups[right.table]
                for alias in merged:
                    groups[alias] = merged
    if len({frozenset(group) for group in groups.values()}) > 1:
        return None
    return set().union(*equal.values()) if equal else set()


def _passed_through(scope: Scope, units: set[tuple[str, str]]) -> set[str]:
    """Output names of a subquery that pass a unit column through unchanged."""
    names = set()
    for projection in scope.expression.selects:
        inner = projection.this if isinstance(projection, exp.Alias) else projection
        if isinstance(inner, exp.Column) and (inner.table, inner.name) in units:
            names.add(projection.alias_or_name)
    return names


def is_unit(column: Column | None) -> bool:
    return column is not None and column.role is Role.PRIVACY_UNIT

"""Column roles: resolve every column to its asset column and enforce its role in every clause."""

from __future__ import annotations

from sqlglot import exp
from sqlglot.errors import OptimizeError, SqlglotError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, traverse_scope

from sandbox.cards import AssetCard, Role
from sandbox.errors import AssetGone, QueryRejected, Violation
from sandbox.guard.analysis import Analysis, Kind, asset_id
from sandbox.guard.messages import explained
from sandbox.guard.names import unresolved, written_names
from sandbox.guard.syntax import AGGREGATES, DIALECT, check_constructs
from sandbox.guard.vocabulary import echoed

ROW_OPAQUE = {Role.PRIVACY_UNIT, Role.JOIN_KEY, Role.MEASURE}
FILTERABLE = {Role.DIMENSION, Role.FILTER_ONLY}


class _Checker:
    def __init__(self, cards: dict[str, AssetCard], written: dict[str, str]) -> None:
        self.cards = cards
        # Column names as the client wrote them, by the name they resolve to.
        self.written = written
        self.violations: list[Violation] = []
        self.outputs: dict[int, dict[str, Role]] = {}
        self.used: dict[str, set[str]] = {}
        # Subquery outputs computed from an expression: they may be grouped, shown and
        # filtered, but never aggregated, or a CASE would count a subset smaller than the
        # group whose units the threshold checks.
        self.derived: dict[int, set[str]] = {}

    def reject(self, rule: str, column: str | None = None) -> None:
        violation = Violation(rule, self.written.get(column, column) if column else column)
        if violation not in self.violations:
            self.violations.append(violation)

    # resolution

    def role(self, column: exp.Column, scope: Scope) -> Role | None:
        source = scope.sources.get(column.table)
        if isinstance(source, exp.Table):
            card = self.cards[asset_id(source)]
            described = card.column(column.name)
            if described is None:
                self.reject("unknown_column", column.name)
                return None
            self.used.setdefault(card.id, set()).add(column.name)
            if described.role is Role.IDENTIFIER:
                self.reject("identifier_column", column.name)
                return None
            return described.role
        if isinstance(source, Scope):
            role = self.outputs.get(id(source.expression), {}).get(column.name)
            if role is None and column.name not in source.expression.named_selects:
                self.reject("unknown_column", column.name)
            return role  # None for an output refused inside, which says why
        self.reject("unknown_column", column.name)
        return None

    def roles_in(self, node: exp.Expression, scope: Scope) -> list[tuple[exp.Column, Role]]:
        found = []
        for column in node.find_all(exp.Column):
            role = self.role(column, scope)
            if role is not None:
                found.append((column, role))
        return found

    # clauses

    def check_filter(self, node: exp.Expression | None, scope: Scope) -> None:
        if node is None:
            return
        if node.find(*AGGREGATES):
            self.reject("aggregate_in_where")
        for column, role in self.roles_in(node, scope):
            if role not in FILTERABLE:
                self.reject(f"{role.value}_in_where", column.name)

    def check_joins(self, select: exp.Select, scope: Scope) -> None:
        for join in select.args.get("joins") or []:
            condition = join.args.get("on")
            if condition is None:
                self.reject("cross_join")
                continue
            for part in condition.flatten() if isinstance(condition, exp.And) else [condition]:
                self.check_join_equality(_unparen(part), scope)

    def check_join_equality(self, part: exp.Expression, scope: Scope) -> None:
        if not (
            isinstance(part, exp.EQ)
            and isinstance(part.this, exp.Column)
            and isinstance(part.expression, exp.Column)
            and part.this.table != part.expression.table
        ):
            self.reject("join_condition")
            return
        left, right = self.role(part.this, scope), self.role(part.expression, scope)
        if left is None or right is None:
            return
        if left != right or left not in {Role.PRIVACY_UNIT, Role.JOIN_KEY}:
            self.reject("join_condition", part.this.name)

    def check_aggregate(self, aggregate: exp.Expression, scope: Scope) -> None:
        if aggregate.find_ancestor(*AGGREGATES) or any(
            inner is not aggregate for inner in aggregate.find_all(*AGGREGATES)
        ):
            self.reject("nested_aggregate")
            return
        argument = aggregate.this
        distinct = isinstance(argument, exp.Distinct)
        if distinct:
            if len(argument.expressions) != 1 or not isinstance(aggregate, exp.Count):
                self.reject("aggregate_argument")
                return
            argument = argument.expressions[0]
        if isinstance(aggregate, exp.Count) and isinstance(argument, exp.Star) and not distinct:
            return
        if not isinstance(argument, exp.Column):
            self.reject("aggregate_argument")
            for column, _ in self.roles_in(argument, scope):
                self.reject("aggregate_argument", column.name)
            return
        role = self.role(argument, scope)
        if role is None:
            return
        if self.is_derived(argument, scope):
            self.reject("derived_column_in_aggregate", argument.name)
            return
        if isinstance(aggregate, exp.Count):
            # Distinct values of any other column count values one person alone may hold.
            allowed = {Role.PRIVACY_UNIT} if distinct else {Role.MEASURE, Role.DIMENSION}
        else:
            allowed = {Role.MEASURE}
        if role not in allowed:
            self.reject(f"{role.value}_in_aggregate", argument.name)

    def check_released(self, node: exp.Expression, scope: Scope, clause: str) -> None:
        """Select list, HAVING, ORDER BY of an aggregate scope: aggregates and dimensions."""
        for aggregate in node.find_all(*AGGREGATES):
            self.check_aggregate(aggregate, scope)
        for column in node.find_all(exp.Column):
            if column.find_ancestor(*AGGREGATES):
                continue
            if not column.table and clause == "order":
                continue  # an output alias
            role = self.role(column, scope)
            if role is not None and role is not Role.DIMENSION:
                self.reject(f"{role.value}_in_{clause}", column.name)

    def check_aggregate_scope(self, select: exp.Select, scope: Scope) -> None:
        self.check_joins(select, scope)
        self.check_filter(select.args.get("where"), scope)
        group = select.args.get("group")
        grouped: set[tuple[str, str]] = set()
        if group is not None:
            if group.find(*AGGREGATES):
                self.reject("aggregate_in_group_by")
            for column, role in self.roles_in(group, scope):
                grouped.add((column.table, column.name))
                if role is not Role.DIMENSION:
                    self.reject(f"{role.value}_in_group_by", column.name)
        has_aggregate = False
        for projection in select.expressions:
            self.check_released(projection, scope, "select")
            has_aggregate = has_aggregate or bool(projection.find(*AGGREGATES))
            for column in projection.find_all(exp.Column):
                if not column.find_ancestor(*AGGREGATES) and (
                    (column.table, column.name) not in grouped
                ):
                    self.reject("ungrouped_column", column.name)
        if not has_aggregate and group is None:
            self.reject("not_aggregate")
        for clause in ("having", "order"):
            if select.args.get(clause) is not None:
                self.check_released(select.args[clause], scope, clause)

    def check_row_scope(self, select: exp.Select, scope: Scope) -> None:
        for clause in ("group", "having", "order", "limit", "offset", "distinct"):
            if select.args.get(clause):
                self.reject(f"{clause}_in_subquery")
        if any(p.find(*AGGREGATES) for p in select.expressions):
            self.reject("aggregate_in_subquery")
        self.check_joins(select, scope)
        self.check_filter(select.args.get("where"), scope)
        outputs: dict[str, Role] = {}
        derived: set[str] = set()
        names = [projection.alias_or_name for projection in select.expressions]
        for name in {n for n in names if names.count(n) > 1}:
            self.reject("duplicate_column_name", name)
        for projection in select.expressions:
            inner = projection.this if isinstance(projection, exp.Alias) else projection
            if isinstance(inner, exp.Column):
                role = self.role(inner, scope)
                if self.is_derived(inner, scope):
                    derived.add(projection.alias_or_name)
            else:
                derived.add(projection.alias_or_name)
                roles = {role for column, role in self.roles_in(inner, scope)}
                for column, role in self.roles_in(inner, scope):
                    if role in ROW_OPAQUE:
                        self.reject(f"{role.value}_in_expression", column.name)
                role = Role.FILTER_ONLY if Role.FILTER_ONLY in roles else Role.DIMENSION
            if role is not None:
                outputs[projection.alias_or_name] = role
        self.outputs[id(select)] = outputs
        self.derived[id(select)] = derived

    def is_derived(self, column: exp.Column, scope: Scope) -> bool:
        source = scope.sources.get(column.table)
        return isinstance(source, Scope) and column.name in self.derived.get(
            id(source.expression), set()
        )

    def check_row_union(self, union: exp.SetOperation) -> None:
        """Set operations only combine released branches: inside a subquery their sides would
        share one privacy-unit count, so one asset's units could pad another's small group."""
        self.reject("set_operation_in_subquery")


def _unparen(node: exp.Expression) -> exp.Expression:
    while isinstance(node, exp.Paren):
        node = node.this
    return node


def _kinds(tree: exp.Query) -> dict[int, Kind]:
    """Which selects release rows (the top query and its set-operation branches)."""
    kinds: dict[int, Kind] = {}
    pending: list[tuple[exp.Expression, Kind]] = [(tree, Kind.AGGREGATE)]
    while pending:
        node, kind = pending.pop()
        kinds[id(node)] = kind
        if isinstance(node, exp.SetOperation):
            pending += [(node.left, kind), (node.right, kind)]
    for node in tree.find_all(exp.Select, exp.SetOperation):
        kinds.setdefault(id(node), Kind.ROW)
    return kinds


def referenced_assets(
    tree: exp.Query, cards: dict[str, AssetCard], destroyed: frozenset[str] = frozenset()
) -> list[str]:
    """The assets named in FROM and JOIN; unknown names, reused CTEs and self-joins are rejected.

    Each released branch of a top-level set operation is thresholded on its own, so an asset
    may appear once per branch; within a branch a second appearance would amplify one unit.
    """
    names = [cte.alias_or_name for cte in tree.find_all(exp.CTE)]
    ctes = {cte.alias_or_name: cte.this for cte in tree.find_all(exp.CTE)}
    violations: list[Violation] = []
    if len(names) != len(set(names)):
        violations.append(Violation("cte_name_reused"))
    cte_uses: dict[str, int] = {}
    named = {asset_id(table) for table in tree.find_all(exp.Table) if table.db}
    if named & destroyed:
        raise AssetGone("the query names a destroyed asset", [Violation("asset_destroyed")])
    for table in tree.find_all(exp.Table):
        if not table.db and table.name in ctes:
            cte_uses[table.name] = cte_uses.get(table.name, 0) + 1
        elif table.args.get("catalog") or not table.db or asset_id(table) not in cards:
            written = ".".join(part for part in (table.catalog, table.db, table.name) if part)
            violations.append(Violation("unknown_table", table=echoed(written)))
    if any(uses > 1 for uses in cte_uses.values()):
        violations.append(Violation("cte_reused"))
    assets: set[str] = set()
    for branch in _released_branches(tree):
        seen = _branch_assets(branch, ctes, cards)
        if len(seen) != len(set(seen)):
            violations.append(Violation("asset_repeated"))
        assets |= set(seen)
    if violations:
        violations = list(dict.fromkeys(violations))
        raise QueryRejected(explained(violations), violations)
    if not assets:
        raise QueryRejected(explained([Violation("no_asset")]), [Violation("no_asset")])
    return sorted(assets)


def _released_branches(tree: exp.Expression) -> list[exp.Expression]:
    if isinstance(tree, exp.SetOperation):
        return _released_branches(tree.left) + _released_branches(tree.right)
    return [tree]


def _branch_assets(
    node: exp.Expression, ctes: dict[str, exp.Expression], cards: dict[str, AssetCard]
) -> list[str]:
    """Assets a branch reads, following CTE references; CTE bodies count once per reference."""
    own = node.parent if isinstance(node.parent, exp.CTE) else None
    found: list[str] = []
    for table in node.find_all(exp.Table):
        if table.find_ancestor(exp.CTE) is not own:
            continue
        if not table.db and table.name in ctes:
            found += _branch_assets(ctes[table.name], ctes, cards)
        elif asset_id(table) in cards:
            found.append(asset_id(table))
    return found


def _schema(cards: dict[str, AssetCard], assets: list[str]) -> dict:
    schema: dict[str, dict[str, dict[str, str]]] = {}
    for asset in assets:
        card = cards[asset]
        schema.setdefault(card.namespace, {})[card.name] = {c.name: c.type for c in card.columns}
    return schema


def analyse_roles(
    tree: exp.Query, cards: dict[str, AssetCard], destroyed: frozenset[str] = frozenset()
) -> Analysis:
    assets = referenced_assets(tree, cards, destroyed)
    try:
        qualified = qualify(
            tree.copy(),  # the client's own names stay in `tree`, for its errors
            schema=_schema(cards, assets),
            dialect=DIALECT,
            validate_qualify_columns=True,
            quote_identifiers=False,
            identify=False,
        )
        scopes = traverse_scope(qualified)
    except (OptimizeError, SqlglotError, KeyError, ValueError) as exc:
        found = unresolved(tree, cards) or [Violation("unresolved_name")]
        raise QueryRejected(explained(found), found) from exc
    # qualify can turn a bare table alias into a whole-row reference; check its output too.
    check_constructs(qualified)
    for subquery in qualified.find_all(exp.Subquery):
        if not isinstance(subquery.parent, exp.From | exp.Join):
            violation = Violation("subquery_in_expression")
            raise QueryRejected(explained([violation]), [violation])
    kinds = _kinds(qualified)
    for node in qualified.find_all(exp.Select, exp.SetOperation):
        paged = any(node.args.get(key) for key in ("order", "limit", "offset"))
        if paged and node is not qualified and kinds.get(id(node)) is Kind.AGGREGATE:
            raise QueryRejected(explained([Violation("order_in_branch")]),
                                [Violation("order_in_branch")])  # fmt: skip
    checker = _Checker(cards, written_names(tree))
    for scope in scopes:
        node = scope.expression
        kind = kinds.get(id(node), Kind.ROW)
        if isinstance(node, exp.Select):
            for star in node.find_all(exp.Star):
                if not isinstance(star.parent, exp.Count):
                    checker.reject("star_not_allowed")
            if kind is Kind.AGGREGATE:
                checker.check_aggregate_scope(node, scope)
            else:
                checker.check_row_scope(node, scope)
        elif isinstance(node, exp.SetOperation) and kind is Kind.ROW:
            checker.check_row_union(node)
    if checker.violations:
        opening = "the query uses columns in ways their roles do not allow"
        raise QueryRejected(explained(checker.violations, opening), checker.violations)
    columns = {asset: sorted(names) for asset, names in sorted(checker.used.items())}
    return Analysis(qualified, sorted(assets), columns, kinds)

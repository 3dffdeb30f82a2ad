"""Every rule the SQL guard names, in a SQL user's words: what it means and what to do.

A refusal's message is built from its violations alone, so it says no more than they do:
names as the client wrote them, positions in the client's text, and the words below.
"""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.cards import Role
from sandbox.errors import Violation

# Sentences one message holds at most; the rest are counted.
MAX_SENTENCES = 6


@dataclass(frozen=True)
class Rule:
    """What a rule means (`{column}`, `{table}` and `{name}` stand for what it names) and what
    a client can do about it."""

    meaning: str
    remedy: str


ROLE_WORDS = {
    Role.PRIVACY_UNIT: ("the privacy unit", "count it with COUNT(DISTINCT …) or join on it"),
    Role.JOIN_KEY: ("a join key", "use it only in JOIN … ON"),
    Role.MEASURE: ("a measure", "use it inside SUM, AVG or COUNT"),
    Role.FILTER_ONLY: ("a filter-only column", "use it only in WHERE"),
    Role.DIMENSION: ("a dimension", "show, group or filter it, or COUNT it"),
}
CLAUSE_WORDS = {
    "where": "WHERE",
    "group_by": "GROUP BY",
    "select": "the select list",
    "having": "HAVING",
    "order": "ORDER BY",
    "aggregate": "this aggregate",
    "expression": "an expression in a subquery",
}

RULES: dict[str, Rule] = {
    # reading the text
    "empty_query": Rule("the query is empty", "send one SELECT statement"),
    "query_too_long": Rule(
        "the query is longer than 20,000 characters", "shorten it, or split it into queries"
    ),
    "syntax": Rule("the query could not be parsed", "correct the SQL at the line and column given"),
    "too_complex": Rule(
        "the query is nested too deeply or has too many parts",
        "simplify it: at most 40 levels of nesting and 5,000 parts",
    ),
    "multiple_statements": Rule("the text holds more than one statement", "send exactly one"),
    "not_a_select": Rule("only SELECT queries are allowed", "ask with one SELECT"),
    # constructs
    "construct_not_allowed": Rule("{name}", "docs/queries.md lists what is allowed"),
    "too_many_concatenations": Rule(
        "the query concatenates more than 16 operands", "concatenate fewer values"
    ),
    "reserved_name": Rule("{column} starts with veil_, which is reserved", "choose another name"),
    "cast_type_not_allowed": Rule(
        "a CAST is to a type outside the allowed ones",
        "cast to VARCHAR, INTEGER, BIGINT, DOUBLE, FLOAT, DATE, TIMESTAMP or BOOLEAN",
    ),
    "join_kind_not_allowed": Rule(
        "SEMI, ANTI and CROSS joins are not allowed", "use [INNER|LEFT|RIGHT|FULL] JOIN … ON"
    ),
    "function_argument_not_allowed": Rule(
        "a function is given an argument it may not take",
        "ROUND and SUBSTRING take small integer literals; EXTRACT and date_trunc take year, "
        "quarter, month, week, day, dow or hour",
    ),
    "literal_too_long": Rule(
        "a text literal is longer than 256 characters", "use shorter literals"
    ),
    "literal_not_allowed": Rule("a text literal holds a NUL character", "remove it"),
    "like_pattern_not_literal": Rule(
        "a LIKE pattern is not a text literal", "write the pattern as a literal"
    ),
    "like_pattern_too_complex": Rule(
        "a LIKE pattern has more than two %", "use at most two % in a pattern"
    ),
    "empty_in_list": Rule("IN is given no values", "list at least one value"),
    "quantile_fraction": Rule(
        "QUANTILE_CONT is not given a literal fraction between 0 and 1",
        "write the fraction as a number literal in [0, 1]",
    ),
    "limit_not_literal": Rule(
        "LIMIT or OFFSET is not an integer literal", "write LIMIT and OFFSET as whole numbers"
    ),
    # tables
    "unknown_table": Rule(
        "{table} does not exist in the catalogue",
        "GET /v1/assets lists the tables; name them namespace.name, as hospital.visits",
    ),
    "asset_destroyed": Rule(
        "the query names a destroyed asset", "its data was destroyed and cannot be read"
    ),
    "cte_name_reused": Rule("two WITH queries share a name", "give each its own name"),
    "cte_reused": Rule("a WITH query is read more than once", "read each WITH query once"),
    "asset_repeated": Rule(
        "a table is read more than once in one branch (a self-join)",
        "read each table once per branch",
    ),
    "no_asset": Rule("the query reads no table", "read a table of the catalogue"),
    "asset_resolution": Rule(
        "the tables the query reads could not be resolved", "simplify the query"
    ),
    # columns
    "unknown_column": Rule(
        "{column} does not exist in the tables the query reads",
        "GET /v1/assets/{id} lists each table's columns",
    ),
    "ambiguous_column": Rule(
        "{column} is in more than one table the query reads",
        "qualify it with its table or alias",
    ),
    "unresolved_name": Rule(
        "a name in the query could not be resolved", "check the column and table names"
    ),
    "identifier_column": Rule(
        "{column} is an identifier, which may not be used anywhere", "leave it out"
    ),
    "star_not_allowed": Rule("SELECT * is not allowed", "name the columns; COUNT(*) is allowed"),
    "duplicate_column_name": Rule(
        "a subquery returns two columns named {column}", "give each its own alias"
    ),
    "derived_column_in_aggregate": Rule(
        "{column} is computed in a subquery, and may be shown or grouped but not aggregated",
        "aggregate the asset's own column",
    ),
    "ungrouped_column": Rule(
        "{column} is shown but not grouped", "add it to GROUP BY, or aggregate it"
    ),
    # shape
    "subquery_in_expression": Rule(
        "subqueries are allowed only in FROM and JOIN", "join the subquery instead"
    ),
    "order_in_branch": Rule(
        "ORDER BY, LIMIT and OFFSET belong to the whole query, not to one branch",
        "move them after the last branch",
    ),
    "set_operation_in_subquery": Rule(
        "UNION is allowed only at the top of the query", "ask each branch on its own"
    ),
    "aggregate_in_where": Rule("an aggregate is in WHERE", "filter on aggregates with HAVING"),
    "aggregate_in_group_by": Rule("an aggregate is in GROUP BY", "group by columns"),
    "aggregate_in_subquery": Rule("a subquery aggregates", "aggregate only in the outer query"),
    "nested_aggregate": Rule("an aggregate is inside another", "aggregate once"),
    "aggregate_argument": Rule(
        "an aggregate's argument is not a bare column", "aggregate a column as it stands"
    ),
    "not_aggregate": Rule(
        "the query releases rows rather than aggregates",
        "aggregate with COUNT, SUM or AVG, or GROUP BY dimensions",
    ),
    "cross_join": Rule("a JOIN has no ON condition", "join with ON a.x = b.y"),
    "join_condition": Rule(
        "a JOIN's ON does not equate two privacy units or two join keys of different tables",
        "join on privacy units or join keys only",
    ),
    **{
        f"{clause}_in_subquery": Rule(
            f"{words} is not allowed in a subquery", f"use {words} in the outer query"
        )
        for clause, words in {
            "group": "GROUP BY",
            "having": "HAVING",
            "order": "ORDER BY",
            "limit": "LIMIT",
            "offset": "OFFSET",
            "distinct": "DISTINCT",
        }.items()
    },
    # roles, per clause
    **{
        f"{role.value}_in_{clause}": Rule(
            f"{{column}} is {ROLE_WORDS[role][0]} and may not be used in {words}",
            ROLE_WORDS[role][1],
        )
        for role in ROLE_WORDS
        for clause, words in CLAUSE_WORDS.items()
    },
    # types
    "type": Rule("the query's types could not be checked", "cast explicitly with TRY_CAST"),
    "condition_not_boolean": Rule(
        "a condition is not BOOLEAN", "compare explicitly, as x = 1 or x IS TRUE"
    ),
    "type_unknown": Rule(
        "the type of an expression cannot be known", "cast it explicitly with TRY_CAST"
    ),
    "implicit_cast": Rule(
        "values of different types are compared or combined",
        "cast explicitly with TRY_CAST so both sides have one type",
    ),
    "set_operation_types": Rule(
        "the branches of a UNION differ in columns or types", "give each branch the same columns"
    ),
    # dominance (a job's queries)
    "order_with_dominance": Rule(
        "a job's query orders or pages its rows", "sort and slice in Python instead"
    ),
    "magnitude_in_having": Rule(
        "a job's query filters on a SUM or AVG in HAVING", "filter in Python instead"
    ),
    # anything the checker trips on
    "unsupported": Rule("the query could not be checked", "simplify it"),
}

_BLANKS = {"column": "a column", "table": "a table", "name": "a construct"}


def sentence(violation: Violation) -> str:
    """One violation in words, with the names it carries quoted."""
    rule = RULES.get(violation.rule)
    if rule is None:
        return violation.rule.replace("_", " ")
    named = {
        key: f'"{value}"' if value is not None else _BLANKS[key]
        for key, value in (
            ("column", violation.column), ("table", violation.table), ("name", violation.name),
        )
    }  # fmt: skip
    if violation.rule == "construct_not_allowed" and violation.name is not None:
        named["name"] = violation.name  # already words, not a name to quote
    where = f" at line {violation.line}, column {violation.col}" if violation.line else ""
    return rule.meaning.format(**named) + where


def explained(violations: list[Violation], opening: str | None = None) -> str:
    """A message for these violations: each once, and what to do when there is one."""
    sentences = list(dict.fromkeys(sentence(v) for v in violations))
    shown = sentences[:MAX_SENTENCES]
    if len(sentences) > len(shown):
        shown.append(f"and {len(sentences) - len(shown)} more")
    text = "; ".join(shown)
    if len(sentences) == 1 and violations[0].rule in RULES:
        text += f" ({RULES[violations[0].rule].remedy})"
    return f"{opening}: {text}" if opening else text

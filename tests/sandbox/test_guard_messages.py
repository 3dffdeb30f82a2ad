"""Refusals in the user's words: every rule the guard and the job checks name is documented,
and no message shows a parser class, the parser's own text, or a literal of the query."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from sqlglot import exp

from sandbox.cards import parse_card
from sandbox.demo import write_demo_assets
from sandbox.errors import QueryRejected
from sandbox.guard import analyse
from sandbox.guard.messages import CLAUSE_WORDS, ROLE_WORDS, RULES
from sandbox.jobs.checks import RULES as JOB_RULES
from sandbox.store import catalog_name
from tests.gateway.test_attacks import REJECTED

DOCS = Path(__file__).resolve().parents[2] / "docs"
SUBQUERY_CLAUSES = ("group", "having", "order", "limit", "offset", "distinct")
# Every class sqlglot builds a tree from, by the name a message once showed.
CLASS_NAMES = sorted(
    {kind.__name__ for kind in vars(exp).values()
     if isinstance(kind, type) and issubclass(kind, exp.Expression)},
    key=len, reverse=True,
)  # fmt: skip


@pytest.fixture(scope="module")
def cards():
    with tempfile.TemporaryDirectory() as folder:
        return {a.card["id"]: parse_card(a.card) for a in write_demo_assets(Path(folder))}


def _refusal(sql: str, cards) -> QueryRejected:
    with pytest.raises(QueryRejected) as refused:
        analyse(sql, cards, {asset: catalog_name(asset) for asset in cards})
    return refused.value


def test_every_guard_rule_is_in_the_queries_table() -> None:
    text = (DOCS / "queries.md").read_text()
    families = {f"{role.value}_in_{clause}" for role in ROLE_WORDS for clause in CLAUSE_WORDS}
    for rule in RULES:
        if rule in families:
            assert "`<role>_in_<clause>`" in text and f"`{rule.split('_in_')[1]}`" in text
        elif rule.split("_in_")[0] in SUBQUERY_CLAUSES and rule.endswith("_in_subquery"):
            assert "`<clause>_in_subquery`" in text and f"`{rule.split('_in_')[0]}`" in text
        else:
            assert f"`{rule}`" in text, rule


def test_every_job_check_rule_is_in_the_jobs_table() -> None:
    text = (DOCS / "jobs.md").read_text()
    assert all(f"`{rule}`" in text for rule in JOB_RULES)


# The attacks the guard itself refuses (the enclave refuses the rest, in words of its own).
GUARDED = [sql for sql, rule in REJECTED if sql and rule not in ("quantile_needs_dp",)]


@pytest.mark.parametrize("sql", GUARDED)
def test_no_refusal_shows_a_class_name_or_the_parsers_words(sql: str, cards) -> None:
    refused = _refusal(sql, cards)
    shown = refused.message + " " + " ".join(str(v.as_dict()) for v in refused.violations)
    for name in CLASS_NAMES:
        if len(name) > 1 and name[0].isupper() and not name.isupper():
            assert not re.search(rf"\b{name}\b", shown), (name, shown)
    assert "sqlglot" not in shown and "<class" not in shown and "Expecting" not in shown


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT COUNT(*) FROM hospital.visits WHERE postcode = '350999' AND (",
        "SELECT COUNT(*) FROM hospital.visits WHERE diagnosis IN ('Q87', 'P003117',",
        "SELECT COUNT(*) FROM hospital.visits WHERE patient_id = 'P005555' OR",
        "SELECT COUNT(*) FROM hospital.visits WHERE age IN (SELECT age FROM hospital.visits "
        "WHERE postcode = '350999')",
    ],
)
def test_no_refusal_echoes_a_literal_of_the_query(sql: str, cards) -> None:
    refused = _refusal(sql, cards)
    literals = re.findall(r"'([^']*)'", sql)
    shown = refused.message + str([v.as_dict() for v in refused.violations])
    assert not any(literal in shown for literal in literals), shown


def test_a_parse_error_points_at_the_token_where_the_parser_stopped(cards) -> None:
    refused = _refusal("SELECT district\nFROM hospital.visits\nWHERE age >> )", cards)
    assert [v.as_dict() for v in refused.violations] == [{"rule": "syntax", "line": 3, "col": 14}]
    assert "at line 3, column 14: " in refused.message

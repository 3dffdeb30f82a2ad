"""SQL guard: parse once, check every construct and column role, then rewrite for the enclave."""

from sandbox.cards import AssetCard
from sandbox.guard.rewrite import UNITS_COLUMN, CompiledQuery, compile_query
from sandbox.guard.roles import Analysis
from sandbox.guard.syntax import parse
from sandbox.guard.types import check_types


def analyse(sql: str, cards: dict[str, AssetCard]) -> Analysis:
    """Everything the policy needs to know about a query, or a QueryRejected."""
    from sandbox.guard.roles import analyse_roles

    analysis = analyse_roles(parse(sql), cards)
    check_types(analysis, cards)
    return analysis


__all__ = ["UNITS_COLUMN", "Analysis", "CompiledQuery", "analyse", "compile_query"]

"""SQL guard: parse once, check every construct, role and type, and compile for the enclave."""

from sandbox.cards import AssetCard
from sandbox.guard.rewrite import UNITS_COLUMN, CompiledQuery, compile_query
from sandbox.guard.roles import Analysis, analyse_roles
from sandbox.guard.syntax import parse


def analyse(sql: str, cards: dict[str, AssetCard], catalogs: dict[str, str]) -> Analysis:
    """Everything the policy needs to know about a query, compiled, or a QueryRejected."""
    analysis = analyse_roles(parse(sql), cards)
    analysis.compiled = compile_query(analysis, cards, catalogs)
    return analysis


__all__ = ["UNITS_COLUMN", "Analysis", "CompiledQuery", "analyse"]

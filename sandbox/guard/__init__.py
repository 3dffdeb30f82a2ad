"""SQL guard: parse once, check every construct, role and type, and compile for the enclave."""

import logging

from sandbox.cards import AssetCard
from sandbox.errors import QueryRejected, SandboxError, Violation
from sandbox.guard.analysis import Analysis
from sandbox.guard.compiled import UNITS_COLUMN, CompiledQuery
from sandbox.guard.messages import explained
from sandbox.guard.rewrite import compile_query
from sandbox.guard.roles import analyse_roles
from sandbox.guard.syntax import parse


def analyse(
    sql: str,
    cards: dict[str, AssetCard],
    catalogs: dict[str, str],
    destroyed: frozenset[str] = frozenset(),
    stored_bounded: frozenset[str] = frozenset(),
    rows_per_unit: dict[str, int | None] | None = None,
    coded: frozenset[str] = frozenset(),
) -> Analysis:
    """Everything the policy needs to know about a query, compiled, or a QueryRejected
    (AssetGone when it names a destroyed asset)."""
    try:
        analysis = analyse_roles(parse(sql), cards, destroyed)
        analysis.compiled = compile_query(
            analysis, cards, catalogs, stored_bounded, rows_per_unit, coded
        )
    except SandboxError:
        raise
    except RecursionError as exc:
        violation = Violation("too_complex")
        raise QueryRejected(explained([violation]), [violation]) from exc
    except Exception as exc:  # noqa: BLE001 - whatever the checker trips on, the query is refused
        log.warning("guard could not check a query: %s", type(exc).__name__)
        violation = Violation("unsupported")
        raise QueryRejected(explained([violation]), [violation]) from exc
    return analysis


log = logging.getLogger(__name__)

__all__ = ["UNITS_COLUMN", "Analysis", "CompiledQuery", "analyse"]

"""The enclave's front door: analyse a query, then run it checked and release only safe rows."""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlglot import exp

from sandbox.disclosure import Dominance, Released, release
from sandbox.errors import QueryRejected, Violation
from sandbox.guard import UNITS_COLUMN, Analysis, CompiledQuery, analyse
from sandbox.guard.analysis import asset_id
from sandbox.guard.dominance import magnitude_channels
from sandbox.guard.syntax import QUANTILES
from sandbox.privacy.answer import Budget, PrivateAnswer, answer
from sandbox.privacy.plan import PrivateQuery, private_query
from sandbox.privacy.terms import QUANTILE_CANDIDATES, Contribution
from sandbox.store import AssetStore, Attachment, MasterKeys, catalog_name
from sandbox.worker import WorkerConfig, WorkerPool

# Checked plans kept per cache (a principal), and caches kept at once.
PLANS_PER_CACHE = 64
CACHES = 1024
SHARED = ""


@dataclass(frozen=True)
class Thresholds:
    """What the policy decided the release must satisfy."""

    min_distinct_units: int
    max_rows: int
    # Set for answers whose sums and means must pass the dominance rules (a job's).
    dominance: Dominance | None = None


@dataclass(frozen=True)
class QueryOutcome:
    """What was released, and what it took: rows scanned per asset and the worker's CPU time."""

    released: Released
    rows_scanned: dict[str, int]
    cpu_ms: int


class Enclave:
    """Owns the asset store and the worker pool; the gateway's only way to touch data."""

    def __init__(
        self,
        assets_root: Path,
        keyring: Path,
        master_key: bytes,
        config: WorkerConfig,
        workers: int = 2,
        on_worker_retired: Callable[[str], None] = lambda reason: None,
        previous_master_key: bytes | None = None,
        master_keys: MasterKeys | None = None,
    ) -> None:
        self.store = AssetStore(
            assets_root, keyring, master_key, previous_master_key, master_keys=master_keys
        )
        self.pool = WorkerPool(self._catalog, config, size=workers, on_retire=on_worker_retired)
        self._attached: tuple[int, list[Attachment]] | None = None
        # Analyses per cache, by (asset generation, SQL text): any change to the assets misses.
        self._plans: OrderedDict[str, OrderedDict[tuple[int, str], Analysis]] = OrderedDict()
        self._plans_lock = threading.Lock()

    def _catalog(self) -> tuple[int, list[Attachment]]:
        """The attachments for the current set of assets, unwrapped once per change."""
        generation = self.store.generation
        if self._attached is None or self._attached[0] != generation:
            self._attached = (generation, self.store.attachments())
        return self._attached

    def analyse(self, sql: str, cache: str | None = SHARED) -> Analysis:
        """The checked, compiled query; the same text over the same assets is checked once.

        Each `cache` (the gateway keeps one per principal) holds plans of its own and never
        evicts another's, so how fast a text is checked says nothing of anyone else's queries.
        With None (a job held for review) nothing is looked up or kept."""
        key = (self.store.generation, sql)
        if cache is not None:
            with self._plans_lock:
                plans = self._plans.get(cache)
                if plans is not None and key in plans:
                    plans.move_to_end(key)
                    return plans[key]
        stored = self.store.list()
        cards = {asset.card.id: asset.card for asset in stored}
        catalogs = {asset: catalog_name(asset) for asset in cards}
        stored_bounded = frozenset(asset.card.id for asset in stored if asset.bounded)
        checked = {asset.card.id: asset.rows_per_unit for asset in stored}
        coded = frozenset(asset.card.id for asset in stored if asset.coded)
        destroyed = frozenset(self.store.destroyed())
        analysis = analyse(sql, cards, catalogs, destroyed, stored_bounded, checked, coded)
        if cache is not None:
            with self._plans_lock:
                plans = self._plans.pop(cache, None) or OrderedDict()
                self._plans[cache] = plans
                plans[key] = analysis
                if len(plans) > PLANS_PER_CACHE:
                    plans.popitem(last=False)
                if len(self._plans) > CACHES:
                    self._plans.popitem(last=False)
        return analysis

    def run(
        self, analysis: Analysis, thresholds: Thresholds, cancel: threading.Event | None = None
    ) -> QueryOutcome:
        """Run a checked query; setting `cancel` stops it (Cancelled) while it runs."""
        compiled = analysis.compiled
        if compiled is None:
            raise ValueError("run takes an analysis made by Enclave.analyse")
        dominance = thresholds.dominance
        sql = self._sql(compiled, thresholds)
        result, cpu_ms = None, 0
        if self._by_rows_first(analysis, thresholds):
            by_rows = _generated(lambda: compiled.sql(thresholds.min_distinct_units, by_rows=True))
            result = self.pool.run(by_rows, cancel)
            cpu_ms = result.cpu_ms
        if result is None or not result.rows:
            result = self.pool.run(sql, cancel)
            cpu_ms += result.cpu_ms
        released = release(
            result.columns,
            result.rows,
            units_column=UNITS_COLUMN,
            min_units=thresholds.min_distinct_units,
            max_rows=thresholds.max_rows,
            limit=compiled.limit,
            offset=compiled.offset,
            truncated=result.truncated,
            dominance=dominance,
            magnitudes=compiled.magnitudes,
        )
        return QueryOutcome(released, self.rows_scanned(analysis), cpu_ms)

    def _by_rows_first(self, analysis: Analysis, thresholds: Thresholds) -> bool:
        """Whether a first pass that reads no unit may decide the query's one group: it passes
        there with more than k x R rows (`CompiledQuery.sql`), and only the asset's public row
        count says whether it could have that many. Otherwise, and when that pass returns no
        row, the exact count decides.

        Whether the second pass runs tells nothing unreleased: it runs when the group has at
        most k x R rows or fails the query's own HAVING. A group that fails the threshold
        always runs it; for one that passes, `COUNT(*)` and the HAVING's value over the same
        rows are released to anyone who may run this query. A GROUP BY is never split so: a
        second pass over its small groups would show, by its time, that some group, perhaps a
        suppressed one, is small (DuckDB skips a pass that has no group to count)."""
        compiled = analysis.compiled
        per_unit = compiled.rows_per_unit if compiled is not None else None
        if per_unit is None or thresholds.dominance is not None or len(analysis.assets) != 1:
            return False
        (asset,) = analysis.assets
        return thresholds.min_distinct_units * per_unit < self.store.get(asset).row_count

    def private(self, analysis: Analysis, contribution: Contribution) -> PrivateQuery:
        """The query under differential privacy with these public contribution bounds, or a
        QueryRejected, decided from public facts alone, if its groups might not all fit in
        what a worker returns."""
        planned = analysis.private.get(contribution)
        if isinstance(planned, PrivateQuery):
            return planned
        stored = {asset: self.store.get(asset) for asset in analysis.assets}
        cards = {asset: s.card for asset, s in stored.items()}
        checked = {asset: s.rows_per_unit for asset, s in stored.items()}
        query = private_query(analysis, cards, contribution, checked)
        # Never the groups found: their number is the data's, and refusing on it would tell.
        rows = _most_rows(analysis, {asset: s.row_count for asset, s in stored.items()})
        limit = self.pool.max_fetch_rows
        for branch in query.branches:
            groups = rows if branch.most_groups is None else branch.most_groups
            per_group = QUANTILE_CANDIDATES if branch.histograms else 1
            if groups * per_group > limit:
                raise QueryRejected(
                    f"under differential privacy a query over this asset may have more than "
                    f"{limit} groups, more than the enclave returns: group by dimensions whose "
                    f"card declares their values, or fewer of them",
                    [Violation("too_many_groups")],
                )
        # Planned once per checked query: an analysis lives only as long as the assets it read.
        analysis.private[contribution] = query
        return query

    def run_private(
        self, query: PrivateQuery, budget: Budget, cancel: threading.Event | None = None
    ) -> tuple[PrivateAnswer, int]:
        """Answer a private query within `budget`; returns the answer and the workers' CPU ms."""
        cpu_ms = 0

        def run(sql: str) -> tuple[list[str], list[list], bool]:
            nonlocal cpu_ms
            result = self.pool.run(sql, cancel)
            cpu_ms += result.cpu_ms
            return result.columns, result.rows, result.truncated

        return answer(query, budget, run), cpu_ms

    @staticmethod
    def _sql(compiled: CompiledQuery, thresholds: Thresholds) -> str:
        if compiled.tree.find(*QUANTILES):
            raise QueryRejected(
                "medians and quantiles are answered only under differential privacy: over real "
                "rows they are one person's value",
                [Violation("quantile_needs_dp")],
            )
        dominance = thresholds.dominance
        if dominance is None:
            return _generated(lambda: compiled.sql(thresholds.min_distinct_units))
        channels = magnitude_channels(compiled.tree, compiled.limit, compiled.offset)
        if channels:
            raise QueryRejected(
                "under the dominance rules a query may not order, page, or filter on sums",
                channels,
            )
        return _generated(lambda: compiled.sql(thresholds.min_distinct_units, dominance.n))

    def rows_scanned(self, analysis: Analysis) -> dict[str, int]:
        """Every row of each asset a query reads: filters run inside the scan, after reading."""
        return {asset: self.store.get(asset).row_count for asset in analysis.assets}

    def close(self) -> None:
        self.pool.close()


def _generated(generate: Callable[[], str]) -> str:
    """The SQL `generate` makes, or a QueryRejected if the rewrite trips on the tree."""
    try:
        return generate()
    except Exception as exc:  # noqa: BLE001 - a tree the rewrite trips on is refused
        raise QueryRejected("the query could not be checked", [Violation("unsupported")]) from exc


def _most_rows(analysis: Analysis, row_counts: dict[str, int]) -> int:
    """The most rows a query's tables can make, from their public row counts: one table's
    rows, or for several (joined, outer joins included) the product of each one's rows plus
    one, which bounds their unmatched rows too."""
    found = (asset_id(table) for table in analysis.tree.find_all(exp.Table))
    tables = [table for table in found if table in row_counts]  # not the names of CTEs
    if len(tables) == 1:
        return row_counts[tables[0]]
    return math.prod(row_counts[table] + 1 for table in tables)

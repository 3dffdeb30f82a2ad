"""Prometheus metrics: requests, stages, decisions, refusals, the enclave, the ledger and
storage. Labels come from bounded sets only: never a principal, asset, grant or query id."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

STAGES = ("authentication", "policy", "guard", "execution", "ledger")
# From half a millisecond (an authentication) to ten seconds (a query at its time limit).
STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# From no wait at all to the query queue's default deadline (VEIL_QUERY_QUEUE_WAIT_S).
QUEUE_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30)


@dataclass(frozen=True)
class State:
    """What is true now rather than counted: read at each scrape, the same in every process."""

    ledger_entries: int
    checkpoint_age_s: float | None
    policy_engine_up: bool
    storage_free_bytes: int
    storage_capacity_bytes: int


class StateCollector(Collector):
    """Reads the state when Prometheus scrapes; a reading that fails leaves its gauges out."""

    def __init__(self, read: Callable[[], State]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        try:
            state = self._read()
        except Exception:  # noqa: BLE001 - a scrape must not fail; absent gauges alert instead
            log.exception("the state for /metrics could not be read")
            return
        yield GaugeMetricFamily(
            "veil_ledger_entries", "Entries in the ledger (its tree size)", state.ledger_entries
        )
        if state.checkpoint_age_s is not None:
            yield GaugeMetricFamily(
                "veil_ledger_checkpoint_age_seconds",
                "Seconds since the newest signed checkpoint (one is signed with every batch)",
                state.checkpoint_age_s,
            )
        yield GaugeMetricFamily(
            "veil_policy_engine_up",
            "1 if the policy engine can decide now, else 0 (every decision is then a denial)",
            int(state.policy_engine_up),
        )
        yield GaugeMetricFamily(
            "veil_asset_storage_free_bytes",
            "Free bytes on the filesystem holding the encrypted assets",
            state.storage_free_bytes,
        )
        yield GaugeMetricFamily(
            "veil_asset_storage_capacity_bytes",
            "Size in bytes of the filesystem holding the encrypted assets",
            state.storage_capacity_bytes,
        )


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._state = CollectorRegistry()
        self.requests = Counter(
            "veil_http_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "veil_http_request_duration_seconds",
            "HTTP request latency by route template",
            ["route", "method"],
            registry=self.registry,
        )
        self.queries = Counter(
            "veil_queries",
            "Queries by outcome (released, denied, rejected, failed)",
            ["outcome"],
            registry=self.registry,
        )
        self.stages = Histogram(
            "veil_stage_duration_seconds",
            "Time in each stage of a request: authentication, policy, guard, execution, ledger",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=self.registry,
        )
        self.decisions = Counter(
            "veil_policy_decisions",
            "Policy decisions by scope and result (allow, deny, error: the engine failed)",
            ["scope", "result"],
            registry=self.registry,
        )
        self.refusals = Counter(
            "veil_refusals",
            "Requests refused, by kind (denied by policy, rejected by a check) and reason code",
            ["kind", "reason"],
            registry=self.registry,
        )
        self.refusal_spikes = Counter(
            "veil_refusal_spikes",
            "Times one principal was refused more often than the limit within the window",
            registry=self.registry,
        )
        self.rows_scanned = Counter(
            "veil_rows_scanned",
            "Rows read by the enclave for queries that ran",
            registry=self.registry,
        )
        self.revenue = Counter(
            "veil_revenue_charged_minor",
            "Charges recorded in the ledger, in minor units of each currency",
            ["currency"],
            registry=self.registry,
        )
        self.worker_restarts = Counter(
            "veil_enclave_worker_restarts",
            "Enclave workers taken out of service, by reason (crashed, timeout, cancelled, "
            "assets_changed, start_failed)",
            ["reason"],
            registry=self.registry,
        )
        # Each process verifies on its own; the worst and the newest result stand.
        self.verification_ok = Gauge(
            "veil_ledger_verification_ok",
            "1 if the last verification of the ledger (incremental or full) passed, 0 if not",
            multiprocess_mode="livemin",
            registry=self.registry,
        )
        self.verified_at = Gauge(
            "veil_ledger_verification_timestamp_seconds",
            "Unix time of the last verification of the ledger (incremental or full)",
            multiprocess_mode="livemax",
            registry=self.registry,
        )
        self.jobs = Counter(
            "veil_jobs",
            "Job status changes (queued, succeeded, review, failed, timeout, cancelled, ...)",
            ["status"],
            registry=self.registry,
        )
        self.suppressed_rows = Counter(
            "veil_suppressed_rows",
            "Result rows withheld by the disclosure gate",
            registry=self.registry,
        )
        self.query_queue_waiting = Gauge(
            "veil_query_queue_waiting",
            "Queries waiting for a free slot in the query queue",
            multiprocess_mode="livesum",
            registry=self.registry,
        )
        self.query_queue_wait = Histogram(
            "veil_query_queue_wait_seconds",
            "Seconds a query waited for a slot (0: it ran at once), including those that "
            "waited until the deadline and were refused",
            buckets=QUEUE_BUCKETS,
            registry=self.registry,
        )

    def watch(self, read: Callable[[], State]) -> None:
        """Report `read()`'s state with every scrape."""
        self._state.register(StateCollector(read))

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time one stage of a request, however it ends."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.stages.labels(name).observe(time.perf_counter() - started)

    def render(self) -> bytes:
        """This process's counts, or every gateway process's summed when several serve (the
        client library keeps them in files under PROMETHEUS_MULTIPROC_DIR), then the state."""
        if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
            counts = generate_latest(self.registry)
        else:
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            counts = generate_latest(registry)
        return counts + generate_latest(self._state)

"""The services a running Veil holds, and the creation of a new home directory."""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from governance import ControlStore, utc_now
from governance.budgets import Budgets
from governance.job_records import JobRecords
from governance.price_caps import PriceCapRecords
from governance.products import ProductRecords
from governance.registrations import RegistrationRecords
from ledger import Ledger, Receipt, generate_signing_key
from ledger.store import create_store
from policies import EmbeddedEngine, OpaEngine, PolicyEngine
from policies.engine import ENGINE_FAILURES
from sandbox.duck import Limits
from sandbox.enclave import Enclave
from sandbox.errors import SandboxError
from sandbox.jobs.runner import JobRunner
from sandbox.keys import create_master_key
from sandbox.worker import WorkerConfig
from services.attachments import AttachmentStore
from services.job_queue import JobQueue
from services.keys import load_master_keys, metrics_token, reshred_destroyed
from services.ledger_watch import LedgerWatch
from services.metrics import Metrics, State
from services.recovery import record_unrecorded
from services.refusals import RefusalWatch, refusal_of
from services.running import Running, RunningWork
from services.settings import Settings
from services.shared_policy import SharedPolicy, publish
from services.shared_slots import SharedSlots, shared_slots
from services.throttle import FairQueue

log = logging.getLogger(__name__)
# How often each gateway process expires the grants whose term is over.
GRANT_CLOCK_S = 1.0


@dataclass
class Services:
    settings: Settings
    control: ControlStore
    budgets: Budgets
    enclave: Enclave
    ledger: Ledger
    policy: PolicyEngine
    metrics: Metrics
    queries: FairQueue
    # Job submissions compile in the gateway: one at a time per principal.
    submissions: FairQueue
    # A twin is built in the gateway's memory (up to ~90 MB at MAX_ROWS): one per principal.
    twin_downloads: FairQueue
    # Set at close: ends the clock that expires grants.
    closing: threading.Event
    running: RunningWork
    jobs: JobQueue
    job_records: JobRecords
    price_caps: PriceCapRecords
    products: ProductRecords
    registrations: RegistrationRecords
    attachments: AttachmentStore
    refusal_watch: RefusalWatch
    ledger_watch: LedgerWatch
    metrics_token: str

    def refused(
        self,
        principal: str,
        kind: str,
        reasons: Iterable[str],
        entry: dict | None = None,
        key: str = "",
    ) -> Receipt | None:
        """Count a refusal (kind `denied` or `rejected`) by reason, and notice a principal
        refused so often that it is probing; who it is goes to the log, never a label.

        Given the refusal's ledger `entry`, record it first: appended under `key`, or, once
        the principal is past its rate, counted into its window's summary (then None)."""
        reasons = list(reasons)
        # An engine that cannot decide refuses everyone: no one is probing, nothing is summarised.
        engine = bool(reasons) and ENGINE_FAILURES.issuperset(reasons)
        receipt = None
        if entry is not None:
            summaries = self.refusal_watch.summarising(
                self.settings.refusal_summary_limit,
                self.settings.refusal_summary_window_s,
                self.ledger.append,
            )
            counted = None if engine else refusal_of(entry, kind, reasons)
            if counted is None or not summaries.count(counted):
                with self.metrics.stage("ledger"):
                    receipt = self.ledger.append(entry, idempotency_key=key)
        for reason in reasons:
            self.metrics.refusals.labels(kind, reason).inc()
        if engine:
            return receipt
        if self.refusal_watch.refused(principal):
            self.metrics.refusal_spikes.inc()
            log.warning(
                "refusal spike: principal %s was refused more than %d times within %.0f s",
                principal,
                self.settings.refusal_limit,
                self.settings.refusal_window_s,
            )
        return receipt

    def state(self) -> State:
        """What /metrics reports as true now: the ledger's head, the engine, the storage."""
        size, committed = self.ledger.head()
        usage = shutil.disk_usage(self.settings.assets_root)
        return State(
            ledger_entries=size,
            checkpoint_age_s=(
                None if committed is None else (datetime.now(UTC) - committed).total_seconds()
            ),
            policy_engine_up=self.policy.ready(),
            storage_free_bytes=usage.free,
            storage_capacity_bytes=usage.total,
        )

    def start_background(self) -> None:
        """Start the enclave workers and the ledger's verification without delaying start-up."""
        self.ledger_watch.start()

        def warm() -> None:
            try:
                self.enclave.pool.warm()
            except SandboxError:
                log.warning("enclave workers could not start ahead of the first queries")

        threading.Thread(target=warm, name="enclave-warm", daemon=True).start()
        threading.Thread(target=self._expire_on_time, name="grant-clock", daemon=True).start()

    def _expire_on_time(self) -> None:
        """Expire grants on a clock, so when an expiry is recorded says nothing of who asked."""
        while not self.closing.wait(GRANT_CLOCK_S):
            try:
                self.expire_grants()
            except Exception:  # noqa: BLE001 - the next tick tries again; requests still check
                log.exception("grants could not be expired on time")

    def close(self) -> None:
        self.closing.set()
        # Refusals still counted in open windows are written before anything else stops.
        self.refusal_watch.close()
        self.ledger_watch.close()
        self.running.close()
        self.jobs.close()
        self.queries.close()
        self.enclave.close()
        self.budgets.close()

    def expire_grants(self) -> None:
        """End every grant whose term is over: record it, and stop work still running under it.

        The entry does not count the work stopped: its developer reads it, and whether a job
        held for review was still running is what it must not learn (each stopped query and
        job has an entry of its own)."""
        for grant in self.control.expire_due(utc_now()):
            cancelled = self.running.stop(grant=grant.id)
            log.info("grant %s expired; %d running requests stopped", grant.id, cancelled)
            self.ledger.append(
                {
                    "type": "grant_expired",
                    "grant": grant.id,
                    "valid_until": grant.valid_until,
                    "at": utc_now(),
                },
                idempotency_key=f"grant:{grant.id}:expired",
            )


def initialise(settings: Settings) -> str | None:
    """Create keys, stores and an admin; return the admin key, or None if already done."""
    settings.home.mkdir(parents=True, exist_ok=True)
    if not settings.master_key_path.exists():
        create_master_key(settings.master_key_path)
    if not settings.signing_key_path.exists():
        generate_signing_key(settings.signing_key_path)
    metrics_token(settings)
    control = ControlStore(settings.control_url)
    ledger = Ledger.open(settings.ledger_url, settings.signing_key_path)
    if control.has_principals():
        return None
    admin_key = control.create_principal("admin", {"admin"}, "platform")
    ledger.append(
        {
            "type": "principal_created",
            "principal": "admin",
            "roles": ["admin"],
            "by": "init",
            "at": utc_now(),
        },  # fmt: skip
        idempotency_key="init:admin",
    )
    return admin_key


def policy_engine(settings: Settings) -> PolicyEngine:
    if settings.policy_engine == "opa":
        return OpaEngine(settings.opa_url)  # one OPA serves every process alike
    engine = EmbeddedEngine(settings.policy_dir)
    if settings.processes > 1:
        return SharedPolicy(engine, settings.policy_root)
    return engine


def migrate_stores(settings: Settings) -> None:
    """Bring the control store's and the ledger's tables to the newest schema."""
    ControlStore(settings.control_url).engine.dispose()
    create_store(settings.ledger_url).dispose()


def prepare_processes(settings: Settings) -> None:
    """Before several gateway processes start: migrate the stores once, publish the policy
    modules they will all load, and give Prometheus an empty folder for their counts."""
    migrate_stores(settings)
    if settings.policy_engine == "embedded":
        publish(EmbeddedEngine(settings.policy_dir), settings.policy_root)
    shutil.rmtree(settings.metrics_root, ignore_errors=True)
    settings.metrics_root.mkdir(parents=True)


def one_at_a_time(settings: Settings, what: str) -> FairQueue:
    """Gateway work one principal does one at a time: a second waits its turn (as long as a
    query may), a third is refused; as many run at once as queries do."""
    slots = settings.queries_running
    return FairQueue(
        slots=slots,
        per_principal=1,
        capacity=slots,
        per_principal_waiting=1,
        wait_s=settings.query_queue_wait_s,
        what=what,
    )


def query_slots(settings: Settings, control: ControlStore) -> SharedSlots | None:
    """The slots that hold a principal's query limit across every gateway process sharing the
    home or the database; none without a limit of its own."""
    if not settings.queries_per_principal:
        return None
    return shared_slots(
        control.engine,
        settings.run_root,
        settings.queries_per_principal,
        connections=settings.queries_running,
    )


def _master_keys(settings: Settings) -> list[bytes]:
    current, replaced = load_master_keys(settings)
    return [current] if replaced is None else [current, replaced]


def open_services(settings: Settings, metrics: Metrics) -> Services:
    if not settings.master_key_path.exists():
        raise RuntimeError(f"{settings.home} is not initialised; run `veil init` first")
    config = WorkerConfig(
        limits=Limits(
            memory_limit=settings.worker_memory_limit,
            threads=settings.worker_threads,
            max_temp_directory_size=settings.worker_spill_limit,
        ),
        timeout_s=settings.query_timeout_s,
        spill_root=settings.spill_root,
        lifetime_s=settings.worker_lifetime_s,
    )
    control = ControlStore(settings.control_url)
    master_key, replaced = load_master_keys(settings)
    enclave = Enclave(
        settings.assets_root,
        settings.keyring_root,
        master_key,
        config,
        settings.workers,
        on_worker_retired=lambda reason: metrics.worker_restarts.labels(reason).inc(),
        previous_master_key=replaced,
        master_keys=lambda: load_master_keys(settings),
    )

    def in_force(work: Running) -> bool:
        registered = work.assets <= enclave.store.cards().keys()
        return registered and control.in_force(work.principal, work.grant_id, sorted(work.assets))

    ledger = Ledger.open(settings.ledger_url, settings.signing_key_path)
    try:
        # Before a single query: changes a crash left off the record are put on it, and a
        # restored backup may have brought destroyed assets back.
        record_unrecorded(enclave.store, ledger)
        reshred_destroyed(enclave.store, ledger, trigger="startup")
    except Exception as error:
        enclave.close()
        ledger.close()
        raise RuntimeError(
            "the asset store could not be brought in line with the ledger (changes a crash "
            "left unrecorded, or destroyed assets back on disk); not serving"
        ) from error
    job_records = JobRecords(control.engine)
    services = Services(
        settings=settings,
        control=control,
        # A private question unanswered after two of its query timeouts was lost with its process.
        budgets=Budgets(control.engine, stale_after_s=2 * settings.query_timeout_s + 5),
        enclave=enclave,
        ledger=ledger,
        policy=policy_engine(settings),
        metrics=metrics,
        queries=FairQueue(
            slots=settings.queries_running,
            per_principal=settings.queries_per_principal or settings.queries_running,
            capacity=settings.query_queue_size,
            per_principal_waiting=settings.query_queue_per_principal,
            wait_s=settings.query_queue_wait_s,
            what="queries",
            waiting=metrics.query_queue_waiting,
            waited=metrics.query_queue_wait,
            shared=query_slots(settings, control),
        ),
        submissions=one_at_a_time(settings, "job submissions"),
        twin_downloads=one_at_a_time(settings, "twin downloads"),
        closing=threading.Event(),
        running=RunningWork(in_force if settings.processes > 1 else None),
        jobs=JobQueue(
            JobRunner(),
            job_records,
            settings.job_concurrency,
            settings.jobs_in_flight_per_principal,
            capacity=settings.job_queue_size,
            per_principal_waiting=settings.job_queue_per_principal,
            lease_s=settings.job_lease_s,
            poll_s=settings.job_poll_s,
        ),
        job_records=job_records,
        price_caps=PriceCapRecords(control.engine),
        products=ProductRecords(control.engine),
        registrations=RegistrationRecords(control.engine),
        attachments=AttachmentStore(settings.attachments_root, lambda: _master_keys(settings)),
        refusal_watch=RefusalWatch(settings.refusal_limit, settings.refusal_window_s),
        ledger_watch=LedgerWatch(ledger, metrics, settings.ledger_verify_interval_s),
        metrics_token=metrics_token(settings),
    )
    metrics.watch(services.state)
    return services

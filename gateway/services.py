"""The services a running Veil holds, and the creation of a new home directory."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.control import ControlStore, utc_now
from gateway.job_queue import JobQueue
from gateway.job_records import JobRecords
from gateway.metrics import Metrics
from gateway.running import RunningWork
from gateway.settings import Settings
from gateway.throttle import InFlight
from ledger import Ledger, generate_signing_key
from policies import EmbeddedEngine, OpaEngine, PolicyEngine
from sandbox.duck import Limits
from sandbox.enclave import Enclave
from sandbox.jobs.runner import JobRunner
from sandbox.keys import create_master_key, load_master_key
from sandbox.worker import WorkerConfig


@dataclass
class Services:
    settings: Settings
    control: ControlStore
    enclave: Enclave
    ledger: Ledger
    policy: PolicyEngine
    metrics: Metrics
    in_flight: InFlight
    running: RunningWork
    jobs: JobQueue
    job_records: JobRecords

    def close(self) -> None:
        self.jobs.close()
        self.enclave.close()

    def expire_grants(self) -> None:
        """End every grant whose term is over: record it, and stop work still running under it."""
        for grant in self.control.expire_due(utc_now()):
            cancelled = self.running.stop(grant=grant.id)
            self.ledger.append(
                {
                    "type": "grant_expired",
                    "grant": grant.id,
                    "valid_until": grant.valid_until,
                    "cancelled": cancelled,
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
        return OpaEngine(settings.opa_url)
    return EmbeddedEngine(settings.policy_dir)


def open_services(settings: Settings, metrics: Metrics) -> Services:
    if not settings.master_key_path.exists():
        raise RuntimeError(f"{settings.home} is not initialised; run `veil init` first")
    config = WorkerConfig(
        limits=Limits(memory_limit=settings.worker_memory_limit, threads=settings.worker_threads),
        timeout_s=settings.query_timeout_s,
    )
    control = ControlStore(settings.control_url)
    return Services(
        settings=settings,
        control=control,
        enclave=Enclave(
            settings.assets_root,
            settings.keyring_root,
            load_master_key(settings.master_key_path),
            config,
            settings.workers,
        ),
        ledger=Ledger.open(settings.ledger_url, settings.signing_key_path),
        policy=policy_engine(settings),
        metrics=metrics,
        in_flight=InFlight(settings.queries_in_flight_per_principal),
        running=RunningWork(),
        jobs=JobQueue(JobRunner(), settings.job_concurrency),
        job_records=JobRecords(control.engine),
    )

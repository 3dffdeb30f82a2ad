"""Settings, read once from the environment at start-up into one typed object."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.cores import available_cores

# Each worker may take `worker_memory_limit`: more than this many wants it said explicitly.
MAX_DEFAULT_WORKERS = 8
# Two at least, so one slow query never holds every worker.
MIN_DEFAULT_WORKERS = 2
SECONDS_PER_DAY = 86_400


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VEIL_", extra="ignore", validate_by_name=True)

    home: Path = Path(".veil")
    policy_engine: Literal["embedded", "opa"] = "embedded"
    opa_url: str = "http://127.0.0.1:8181"
    policy_dir: Path | None = None
    database_url: str | None = None
    # What Prometheus sends as its bearer token; by default the one in `metrics_token_path`.
    metrics_token: str | None = None
    query_timeout_s: float = 10.0
    worker_memory_limit: str = "1GB"
    # What each enclave worker may spill, encrypted, under `spill_root` once past its memory
    # limit; "0B": nothing, and such a query fails instead.
    worker_spill_limit: str = "8GB"
    # An enclave worker is replaced once it has served this long (its successor starts at once).
    worker_lifetime_s: float = Field(600.0, gt=0)
    # DuckDB threads per enclave worker; 0: the cores this gateway process may use.
    worker_threads: int = Field(0, ge=0)
    # Enclave (DuckDB) worker processes per gateway process; 0: from the cores, 2 to 8.
    workers: int = Field(0, ge=0)
    # Gateway processes `veil serve` runs; each has its own enclave workers and job queue.
    processes: int = 1
    # How long a gateway keeps an idle HTTP connection open (uvicorn's `timeout_keep_alive`).
    # Longer than clients keep one in their pools (httpx: 5 s), so that no client sends a
    # request on a connection the server is closing; a load balancer in front should close
    # first (AWS ALB: 60 s).
    keep_alive_s: int = Field(75, gt=0)
    # How long a registration stays under public notice, open to objections, before it may be
    # registered (seconds; the demo's own assets are registered without one).
    notice_period_s: float = Field(7 * 24 * 3600.0, ge=0)
    # Queries each gateway process runs at once; 0: one per enclave worker.
    queries_running: int = Field(0, ge=0)
    # Queries one principal runs at once in all the gateway processes sharing this home or
    # database (slots in `run_root`, or PostgreSQL advisory locks); 0: no limit of its own,
    # only each process's `queries_running` (alone, a developer may use every worker).
    # VEIL_QUERIES_IN_FLIGHT_PER_PRINCIPAL is its former name.
    queries_per_principal: int = Field(
        0,
        ge=0,
        validation_alias=AliasChoices(
            "VEIL_QUERIES_PER_PRINCIPAL", "VEIL_QUERIES_IN_FLIGHT_PER_PRINCIPAL"
        ),
    )
    # Queries that may wait for a slot in each process, in all and of one principal, and for
    # how long; beyond these a query is refused with 429 RATE_LIMITED.
    query_queue_size: int = Field(64, ge=0)
    query_queue_per_principal: int = Field(32, ge=0)
    query_queue_wait_s: float = Field(30.0, ge=0)
    max_upload_bytes: int = 200 * 1024 * 1024
    job_concurrency: int = 2
    # Jobs one principal may run at once; the rest of its jobs wait, others' start first.
    jobs_in_flight_per_principal: int = 1
    # Jobs that may wait to start, in all and of one principal; beyond, a submission is a 429.
    job_queue_size: int = Field(64, ge=0)
    job_queue_per_principal: int = Field(16, ge=0)
    # A running job's lease: renewed every third of it; a process silent this long has lost
    # its running jobs. Idle slots look for jobs queued by other processes every poll.
    job_lease_s: float = Field(30.0, gt=0)
    job_poll_s: float = Field(1.0, gt=0)
    job_timeout_s: float = 60.0
    job_cpu_s: int = 30
    job_memory_mb: int = 512
    # The output gate's own deadline, after a job ends; past it the job is refused (gate_limit).
    job_gate_timeout_s: float = 20.0
    # A principal refused more than this often within the window counts as a refusal spike.
    refusal_limit: int = 20
    refusal_window_s: float = 300.0
    # Refusals of one principal each gateway process appends one by one within a window of
    # `refusal_summary_window_s` (aligned on the clock, a whole divisor of a day so no window
    # spans two months); past them, one summary entry per window counts the rest.
    refusal_summary_limit: int = Field(1000, ge=0)
    refusal_summary_window_s: int = Field(300, ge=1, le=SECONDS_PER_DAY)
    # How often each gateway process verifies the whole ledger for /metrics.
    ledger_verify_interval_s: float = 600.0
    # The server's log: uvicorn's text lines, or one JSON object per line for a collector.
    log_format: Literal["text", "json"] = "text"

    @field_validator("refusal_summary_window_s")
    @classmethod
    def _divides_a_day(cls, seconds: int) -> int:
        if SECONDS_PER_DAY % seconds:
            raise ValueError("the refusal summary window must divide a day (86400 s) exactly")
        return seconds

    @model_validator(mode="after")
    def _from_the_machine(self) -> Settings:
        """Threads and workers left at 0 come from the cores available (cgroup-aware),
        shared among the gateway processes; queries running at once, from the workers."""
        cores = max(1, available_cores() // max(1, self.processes))
        if self.worker_threads == 0:
            self.worker_threads = cores
        if self.workers == 0:
            self.workers = min(MAX_DEFAULT_WORKERS, max(MIN_DEFAULT_WORKERS, cores))
        if self.queries_running == 0:
            self.queries_running = self.workers
        return self

    @property
    def control_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home.resolve() / 'control.db'}"

    @property
    def ledger_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home.resolve() / 'ledger.db'}"

    @property
    def policy_root(self) -> Path:
        """The module set published to every gateway process, when several serve."""
        return self.home / "policy"

    @property
    def run_root(self) -> Path:
        """What the gateway processes sharing the home coordinate through while they run."""
        return self.home / "run"

    @property
    def spill_root(self) -> Path:
        """Enclave workers' encrypted temporary files, a folder of its own for each."""
        return self.home / "spill"

    @property
    def metrics_root(self) -> Path:
        """Prometheus' per-process files, when several gateway processes serve."""
        return self.home / "metrics"

    @property
    def master_key_path(self) -> Path:
        return self.home / "keys" / "master.key"

    @property
    def previous_master_key_path(self) -> Path:
        """The master key a rotation replaces, kept until every data key is wrapped anew."""
        return self.home / "keys" / "master.key.previous"

    @property
    def signing_key_path(self) -> Path:
        return self.home / "keys" / "ledger-signing.key"

    @property
    def metrics_token_path(self) -> Path:
        return self.home / "keys" / "metrics.token"

    @property
    def assets_root(self) -> Path:
        return self.home / "assets"

    @property
    def attachments_root(self) -> Path:
        """Registration documents, each encrypted under a key of its own."""
        return self.home / "attachments"

    @property
    def keyring_root(self) -> Path:
        """Wrapped data keys, apart from the data so a backup of the assets holds none."""
        return self.home / "keys" / "assets"

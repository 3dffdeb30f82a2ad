"""Settings, read once from the environment at start-up into one typed object."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VEIL_", extra="ignore")

    home: Path = Path(".veil")
    policy_engine: Literal["embedded", "opa"] = "embedded"
    opa_url: str = "http://127.0.0.1:8181"
    policy_dir: Path | None = None
    database_url: str | None = None
    # What Prometheus sends as its bearer token; by default the one in `metrics_token_path`.
    metrics_token: str | None = None
    query_timeout_s: float = 10.0
    worker_memory_limit: str = "1GB"
    worker_threads: int = 1
    # Enclave (DuckDB) worker processes per gateway process.
    workers: int = 2
    # Gateway processes `veil serve` runs; each has its own enclave workers and job queue.
    processes: int = 1
    queries_in_flight_per_principal: int = 1
    max_upload_bytes: int = 200 * 1024 * 1024
    job_concurrency: int = 2
    # Jobs one principal may run at once; the rest of its jobs wait, others' start first.
    jobs_in_flight_per_principal: int = 1
    job_timeout_s: float = 60.0
    job_cpu_s: int = 30
    job_memory_mb: int = 512
    # The output gate's own deadline, after a job ends; past it the job is refused (gate_limit).
    job_gate_timeout_s: float = 20.0
    # A principal refused more than this often within the window counts as a refusal spike.
    refusal_limit: int = 20
    refusal_window_s: float = 300.0
    # How often each gateway process verifies the whole ledger for /metrics.
    ledger_verify_interval_s: float = 600.0
    # The server's log: uvicorn's text lines, or one JSON object per line for a collector.
    log_format: Literal["text", "json"] = "text"

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
    def keyring_root(self) -> Path:
        """Wrapped data keys, apart from the data so a backup of the assets holds none."""
        return self.home / "keys" / "assets"

"""Ledger throughput: sustained signed appends (SQLite, PostgreSQL) and full verification.

Run: .venv/bin/python bench/ledger_throughput.py [--appends N] [--threads 1,8,32]
     [--verify-entries N]
With PostgreSQL: scripts/with-postgres .venv/bin/python bench/ledger_throughput.py
Prints a table and writes bench/results/ledger_throughput.json.

Appends go through the public `Ledger.append`, one query-like entry (about 600 bytes of
canonical JSON) per call, as the gateway records a query. Concurrent calls are group-committed:
one transaction and one signed checkpoint per batch; the figures count the checkpoints. Each
(store, thread count) run starts from empty tables. PostgreSQL runs only when
VEIL_TEST_POSTGRES_URL is set; its ledger tables are dropped before and after each run.

Verification builds a SQLite store of --verify-entries rows directly (same canonical text,
leaf hashes and one signed checkpoint at the final size), then times `Ledger.verify()`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sqlite3
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

from environment import git_state, machine, version
from figures import summarise
from sqlalchemy import create_engine, func, insert, select, text

from ledger import Frontier, Ledger, canonical_json, generate_signing_key, leaf_hash
from ledger.checkpoints import sign_checkpoint
from ledger.keys import load_signing_key
from ledger.log import KEY_FIELD
from ledger.settlements import period_of
from ledger.store import create_store, ledger_checkpoints, ledger_entries

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "ledger_throughput.json"
ORIGIN = "veil.local/ledger"
POSTGRES_ENV = "VEIL_TEST_POSTGRES_URL"
LEDGER_TABLES = (
    "ledger_entries",
    "ledger_checkpoints",
    "ledger_verified",
    "ledger_alembic_version",
)
WARMUP = 50
BATCH = 10_000
EPOCH = datetime(2026, 6, 1, tzinfo=UTC)

# --- entries ----------------------------------------------------------------------------------


def query_entry(i: int) -> tuple[dict[str, Any], str]:
    """A released, charged query entry shaped like the gateway's, and its idempotency key."""
    digest = hashlib.sha256(i.to_bytes(8, "big")).hexdigest()
    query_id = "q_" + digest[:32]
    amount = 100 + (i * 7919) % 9_900
    hospital = amount * 6 // 10
    at = (EPOCH + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
    entry = {
        "type": "query",
        "query_id": query_id,
        "principal": "fintech",
        "purpose": "credit-risk",
        "grant_id": "g_fintech_claims",
        "outcome": "released",
        "assets": ["hospital.visits", "insurance.claims"],
        "usage": {
            "rows_scanned": {"hospital.visits": 30_000, "insurance.claims": 20_000 + i % 97},
            "cpu_ms": 40 + i % 300,
            "bytes_returned": 300 + i % 2_000,
            "rows_released": 5 + i % 20,
            "suppressed_rows": i % 3,
        },
        "cost": {"amount_minor": amount, "currency": "CNY", "plan": "commercial"},
        "postings": [
            ["developer:fintech", -amount],
            ["party:city-hospital", hospital],
            ["party:insurer", amount - hospital],
        ],
        "at": at,
    }
    return entry, query_id


def entry_text(i: int) -> tuple[str, str, str | None]:
    """(idempotency key, hashed text, period) exactly as `Ledger.append` would store entry `i`."""
    entry, key = query_entry(i)
    return key, canonical_json({**entry, KEY_FIELD: key}), period_of(entry)


# --- statistics and machine -------------------------------------------------------------------


def versions() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": version("sqlalchemy"),
        "alembic": version("alembic"),
        "psycopg": version("psycopg"),
        "cryptography": version("cryptography"),
    }


def postgres_settings(url: str) -> dict[str, str]:
    """The server version and the settings that decide what a commit costs."""
    engine = create_engine(url)
    names = ("server_version", "fsync", "synchronous_commit", "wal_sync_method")
    with engine.connect() as connection:
        settings = {name: connection.exec_driver_sql(f"SHOW {name}").scalar() for name in names}
    engine.dispose()
    return {name: str(value) for name, value in settings.items()}


# --- appends ----------------------------------------------------------------------------------


def drop_ledger_tables(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE IF EXISTS {', '.join(LEDGER_TABLES)}"))
    engine.dispose()


def count_checkpoints(url: str, above: int) -> int:
    engine = create_engine(url)
    with engine.connect() as connection:
        found = connection.execute(
            select(func.count()).where(ledger_checkpoints.c.tree_size > above)
        ).scalar_one()
    engine.dispose()
    return found


def run_appends(url: str, key: Path, appends: int, threads: int) -> dict[str, Any]:
    """`appends` timed appends from `threads` threads after WARMUP untimed ones."""
    entries = [query_entry(i) for i in range(WARMUP + appends)]
    log = Ledger.open(url, key, origin=ORIGIN)
    try:
        for entry, idempotency_key in entries[:WARMUP]:
            log.append(entry, idempotency_key)
        next_index = count(WARMUP)
        barrier = threading.Barrier(threads + 1)

        def worker() -> list[int]:
            samples = []
            barrier.wait()
            # next() on a shared count is atomic under the GIL: each index is taken once.
            while (i := next(next_index)) < len(entries):
                started = time.perf_counter_ns()
                log.append(*entries[i])
                samples.append(time.perf_counter_ns() - started)
            return samples

        with ThreadPoolExecutor(threads) as pool:
            futures = [pool.submit(worker) for _ in range(threads)]
            barrier.wait()
            started = time.perf_counter()
            samples = [ns for future in futures for ns in future.result()]
            elapsed = time.perf_counter() - started
        report = log.verify()
        assert report.ok, report.problems
        assert report.tree_size == len(entries), report.tree_size
        checkpoints = count_checkpoints(url, above=WARMUP)
    finally:
        log.close()
    return {
        "threads": threads,
        "appends": len(samples),
        "seconds": round(elapsed, 3),
        "appends_per_s": round(len(samples) / elapsed, 1),
        "checkpoints": checkpoints,
        "entries_per_checkpoint": round(len(samples) / checkpoints, 2),
        **summarise(samples),
    }


def append_series(url: str, key: Path, appends: int, threads: list[int]) -> dict[str, Any]:
    postgres = not url.startswith("sqlite")
    figures = {}
    for n in threads:
        if postgres:
            drop_ledger_tables(url)
        try:
            figures[str(n)] = run_appends(url, key, appends, n)
        finally:
            if postgres:
                drop_ledger_tables(url)
            else:
                for suffix in ("", "-wal", "-shm"):
                    Path(url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
        print(f"  {n} thread(s): {figures[str(n)]['appends_per_s']} appends/s", flush=True)
    return figures


# --- verification -----------------------------------------------------------------------------


def build_store(url: str, key: Path, size: int) -> float:
    """Bulk-insert `size` entries and one signed checkpoint at `size`; returns seconds."""
    started = time.perf_counter()
    create_store(url).dispose()
    engine = create_engine(url)
    frontier = Frontier()
    created_at = datetime.now(UTC).isoformat()
    with engine.connect() as connection:
        for first in range(0, size, BATCH):
            rows = []
            for i in range(first, min(first + BATCH, size)):
                idempotency_key, data, period = entry_text(i)
                leaf = leaf_hash(data.encode("utf-8"))
                frontier.append(leaf)
                rows.append(
                    {
                        "idx": i,
                        "idempotency_key": idempotency_key,
                        "data": data,
                        "leaf_hash": leaf.hex(),
                        "created_at": created_at,
                        "period": period,
                    }
                )
            with connection.begin():
                connection.execute(insert(ledger_entries), rows)
        root = frontier.root()
        note = sign_checkpoint(load_signing_key(key), ORIGIN, size, root)
        with connection.begin():
            connection.execute(
                insert(ledger_checkpoints).values(tree_size=size, root_hash=root.hex(), note=note)
            )
    engine.dispose()
    return time.perf_counter() - started


def run_verify(folder: Path, key: Path, size: int) -> dict[str, Any]:
    path = folder / "verify.db"
    url = f"sqlite:///{path}"
    build_s = build_store(url, key, size)
    log = Ledger.open(url, key, origin=ORIGIN)
    try:
        started = time.perf_counter()
        report = log.verify()
        elapsed = time.perf_counter() - started
    finally:
        log.close()
    assert report.ok, report.problems
    assert report.tree_size == size, report.tree_size
    return {
        "entries": size,
        "build_seconds": round(build_s, 1),
        "store_bytes": path.stat().st_size,
        "verify_seconds": round(elapsed, 2),
        "entries_per_s": round(size / elapsed),
    }


# --- report -----------------------------------------------------------------------------------


def print_table(report: dict[str, Any]) -> None:
    header = f"{'store':<12}{'threads':>8}{'appends/s':>11}{'per ckpt':>10}" + "".join(
        f"{h:>9}" for h in ("p50 ms", "p95 ms", "p99 ms", "max ms")
    )
    print(header)
    print("-" * len(header))
    for store, series in report["append"].items():
        if "skipped" in series:
            print(f"{store:<12} skipped: {series['skipped']}")
            continue
        for threads, f in series.items():
            cells = "".join(f"{f[k]:>9.3f}" for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms"))
            batch = f["entries_per_checkpoint"]
            print(f"{store:<12}{threads:>8}{f['appends_per_s']:>11.1f}{batch:>10.1f}{cells}")
    verify = report["verify"]["sqlite"]
    print(
        f"verify sqlite: {verify['entries']:,} entries in {verify['verify_seconds']} s "
        f"({verify['entries_per_s']:,} entries/s; store built in {verify['build_seconds']} s, "
        f"{verify['store_bytes'] / 1e6:.0f} MB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=5_000, help="timed appends per run")
    parser.add_argument("--threads", default="1,8,32", help="comma-separated thread counts")
    parser.add_argument("--verify-entries", type=int, default=1_000_000)
    args = parser.parse_args()
    threads = [int(n) for n in args.threads.split(",")]
    postgres_url = os.environ.get(POSTGRES_ENV)

    entry_bytes = len(entry_text(0)[1].encode("utf-8"))
    report: dict[str, Any] = {
        "command": " ".join(["python", "bench/ledger_throughput.py", *sys.argv[1:]]),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        "git": git_state(),
        "notes": [
            f"each append: one ~{entry_bytes}-byte canonical JSON query entry through "
            "Ledger.append, which returns once the transaction holding it has committed; "
            "appends waiting together commit in one transaction under one signed checkpoint "
            "(entries_per_checkpoint is the mean batch)",
            f"{WARMUP} untimed appends first; appends/s is timed appends over wall time",
            "p50 is the median; p95 and p99 are nearest-rank; latency is one append() call, "
            "including waiting for the Ledger's writer lock when threads > 1",
            "SQLite: WAL, synchronous=FULL (as ledger/store.py sets), a file in the temp dir",
        ],
        "settings": {
            "appends": args.appends,
            "threads": threads,
            "verify_entries": args.verify_entries,
            "entry_bytes": entry_bytes,
        },
        "append": {},
        "verify": {},
    }
    with tempfile.TemporaryDirectory(prefix="veil-bench-") as name:
        folder = Path(name)
        key = folder / "ledger.key"
        generate_signing_key(key)
        print("appends, sqlite", flush=True)
        sqlite_url = f"sqlite:///{folder / 'append.db'}"
        report["append"]["sqlite"] = append_series(sqlite_url, key, args.appends, threads)
        if postgres_url:
            print("appends, postgresql", flush=True)
            report["versions"]["postgresql"] = postgres_settings(postgres_url)
            report["append"]["postgresql"] = append_series(postgres_url, key, args.appends, threads)
        else:
            report["append"]["postgresql"] = {"skipped": f"{POSTGRES_ENV} is not set"}
        print(f"verify, sqlite, {args.verify_entries:,} entries", flush=True)
        report["verify"]["sqlite"] = run_verify(folder, key, args.verify_entries)

    print_table(report)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

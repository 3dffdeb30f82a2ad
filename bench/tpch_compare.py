"""TPC-H three ways: raw DuckDB, Veil's enclave as a library, and Veil over HTTP.

Run: .venv/bin/python bench/tpch_compare.py [--scales 0.1,1,10] [--repeat N] [--threads T]
Prints a table and writes bench/results/tpch_compare.json.

Each adapted query (bench/tpch_queries.py) runs the three ways in turn, round after round,
so drift on a busy machine falls on all three alike:

- raw: DuckDB in a process of its own, on an unencrypted database file of the same tables,
  the query text as written; the time is `execute` and `fetchall` inside that process;
- enclave: `Enclave.analyse` and `Enclave.run` from this process, the path every query takes
  under thresholds (parse, guard, rewrite, a hardened worker on the encrypted asset,
  suppression);
- dp: the same under differential privacy (`Enclave.private` and `Enclave.run_private`: the
  contribution-bounded aggregation, OpenDP's noise and selection, the finishing query);
- http: `POST /v1/queries` against `veil serve`, adding authentication, the policy decision,
  pricing and a signed ledger append before the answer.

Raw DuckDB and the enclave worker get the same threads and memory limit. Peak memory is
each executing process's high-water mark (VmHWM) after its queries at that scale.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

import duckdb
import httpx
from demo_server import demo_server
from environment import git_state, machine, version
from figures import summarise
from tpch_data import PROVIDER, TpchAsset, tpch_assets
from tpch_queries import QUERIES

from sandbox.duck import Limits
from sandbox.enclave import Enclave, Thresholds
from sandbox.errors import QueryRejected
from sandbox.keys import load_master_key
from sandbox.privacy.answer import Budget
from sandbox.privacy.terms import Contribution
from sandbox.store import AssetStore
from sandbox.worker import WorkerConfig

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "tpch_compare.json"
WAYS = ("raw", "enclave", "dp", "http")
# The dp way's terms: the shipped ε and δ per query.
DP_BUDGET = Budget(epsilon=1.0, delta=1e-7)
DP_CONTRIBUTION = Contribution(max_groups=4, max_rows=50)
MIN_UNITS = 10
TIMEOUT_S = 600.0


def _raw_serve(channel: Connection, database: str, threads: int, memory: str) -> None:
    connection = duckdb.connect(database, read_only=True)
    connection.execute(f"SET threads = {threads}")
    connection.execute(f"SET memory_limit = '{memory}'")
    while (sql := channel.recv()) is not None:
        started = time.perf_counter_ns()
        rows = connection.execute(sql).fetchall()
        channel.send((time.perf_counter_ns() - started, len(rows)))
    channel.send(_peak_kib(os.getpid()))


class RawDuckDB:
    """DuckDB in a child process, so its memory is its own to measure."""

    def __init__(self, database: Path, threads: int, memory: str) -> None:
        context = multiprocessing.get_context("spawn")
        self.channel, child = context.Pipe()
        self.process = context.Process(
            target=_raw_serve, args=(child, str(database), threads, memory), daemon=True
        )
        self.process.start()

    def run(self, sql: str) -> tuple[int, int]:
        self.channel.send(sql)
        return self.channel.recv()

    def close(self) -> int:
        self.channel.send(None)
        peak = self.channel.recv()
        self.process.join(timeout=30)
        return peak


def _peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _enclave_workers_peak_kib() -> int:
    """The highest VmHWM among this process's enclave workers."""
    peaks = [0]
    for child in multiprocessing.active_children():
        if child.name == "veil-enclave" and child.pid is not None:
            peaks.append(_peak_kib(child.pid))
    return max(peaks)


def _raw_database(assets: list[TpchAsset]) -> Path:
    """The same tables in a plain DuckDB file next to the cached Parquet files."""
    target = assets[0].parquet.parent / "raw.duckdb"
    if target.exists() and target.stat().st_mtime >= max(a.parquet.stat().st_mtime for a in assets):
        return target
    target.unlink(missing_ok=True)
    connection = duckdb.connect(str(target))
    connection.execute("SET enable_progress_bar = false")
    connection.execute("CREATE SCHEMA tpch")
    for asset in assets:
        connection.execute(
            f"CREATE TABLE {asset.card['id']} AS SELECT * FROM read_parquet('{asset.parquet}')"
        )
    connection.close()
    return target


def _veil_home(home: Path, assets: list[TpchAsset]) -> None:
    """A demo home (principals, keys) with the TPC-H assets registered through the store."""
    subprocess.run(
        [sys.executable, "-m", "gateway.cli", "demo", "--home", str(home), "--no-serve"],
        cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    store = AssetStore(home / "assets", home / "keys" / "assets", _master_key(home))
    for asset in assets:
        store.register(asset.card, asset.parquet)


def _master_key(home: Path) -> bytes:
    return load_master_key(home / "keys" / "master.key")


def _grant(url: str, keys: dict[str, str]) -> str:
    """A provider principal for the TPC-H cards, and the analyst's approved grant on them."""

    def post(who: str, path: str, body: dict | None = None) -> dict:
        answer = httpx.post(f"{url}{path}", json=body, timeout=30,
                            headers={"Authorization": f"Bearer {keys[who]}"})  # fmt: skip
        answer.raise_for_status()
        return answer.json()

    provider = post("admin", "/v1/principals", {"id": PROVIDER, "roles": ["provider"],
                                                "org": PROVIDER})  # fmt: skip
    keys = dict(keys, **{PROVIDER: provider["api_key"]})
    grant = post("analyst", "/v1/grants", {
        "assets": ["tpch.customer", "tpch.orders", "tpch.lineitem"], "purpose": "public_welfare",
        "scenario": "benchmark", "methods": ["sql"], "valid_until": "2099-01-01T00:00:00Z",
    })["id"]  # fmt: skip
    post(PROVIDER, f"/v1/grants/{grant}/approve")
    post("supervisor", f"/v1/grants/{grant}/approve")
    return grant


def compare(scale: float, repeat: int, threads: int, memory: str) -> dict:
    assets = tpch_assets(scale)
    raw = RawDuckDB(_raw_database(assets), threads, memory)
    samples: dict[str, dict[str, list[int]]] = {q: {w: [] for w in WAYS} for q in QUERIES}
    rows: dict[str, dict[str, int]] = {q: {} for q in QUERIES}
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder) / "home"
        _veil_home(home, assets)
        config = WorkerConfig(Limits(memory_limit=memory, threads=threads), timeout_s=TIMEOUT_S)
        enclave = Enclave(home / "assets", home / "keys" / "assets", _master_key(home), config,
                          workers=1)  # fmt: skip
        env = {"VEIL_WORKER_THREADS": str(threads), "VEIL_WORKER_MEMORY_LIMIT": memory,
               "VEIL_QUERY_TIMEOUT_S": str(TIMEOUT_S), "VEIL_WORKERS": "1"}  # fmt: skip
        with demo_server(home, env) as (url, keys), httpx.Client(base_url=url, timeout=TIMEOUT_S,
                headers={"Authorization": f"Bearer {keys['analyst']}"}) as client:  # fmt: skip
            grant = _grant(url, keys)
            for round_ in range(repeat + 1):  # the first round warms caches and is dropped
                for name, sql in QUERIES.items():
                    elapsed, count = raw.run(sql)
                    timed = {"raw": elapsed}
                    started = time.perf_counter_ns()
                    outcome = enclave.run(enclave.analyse(sql), Thresholds(MIN_UNITS, 10_000))
                    timed["enclave"] = time.perf_counter_ns() - started
                    started = time.perf_counter_ns()
                    try:
                        private = enclave.private(enclave.analyse(sql), DP_CONTRIBUTION)
                        noisy, _ = enclave.run_private(private, DP_BUDGET)
                        timed["dp"] = time.perf_counter_ns() - started
                        rows[name]["dp"] = len(noisy.released.rows)
                    except QueryRejected as refused:  # Q3 groups by a date: no public domain
                        rows[name]["dp"] = refused.violations[0].rule
                    started = time.perf_counter_ns()
                    answer = client.post("/v1/queries", json={"sql": sql, "grant_id": grant})
                    timed["http"] = time.perf_counter_ns() - started
                    answer.raise_for_status()
                    rows[name].update(raw=count, enclave=len(outcome.released.rows),
                                      http=len(answer.json()["rows"]))  # fmt: skip
                    if round_:
                        for way, ns in timed.items():
                            samples[name][way].append(ns)
        enclave_peak = _enclave_workers_peak_kib()
        enclave.close()
    raw_peak = raw.close()
    lineitem = next(a.parquet for a in assets if a.card["id"] == "tpch.lineitem")
    lineitem_rows = duckdb.sql(f"SELECT count(*) FROM '{lineitem}'").fetchone()[0]
    queries = {}
    for name in QUERIES:
        figures = {way: summarise(samples[name][way]) for way in WAYS if samples[name][way]}
        dp = figures.get("dp")
        queries[name] = figures | {
            "rows_released": rows[name],
            "enclave_over_raw": round(figures["enclave"]["p50_ms"] / figures["raw"]["p50_ms"], 2),
            "dp_over_raw": dp and round(dp["p50_ms"] / figures["raw"]["p50_ms"], 2),
            "http_minus_enclave_ms": round(
                figures["http"]["p50_ms"] - figures["enclave"]["p50_ms"], 2
            ),
        }
    return {
        "scale": scale,
        "lineitem_rows": lineitem_rows,
        "queries": queries,
        "peak_memory_mib": {"raw": round(raw_peak / 1024), "enclave": round(enclave_peak / 1024)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="0.1,1,10")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory", default="8GB")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the figures go")
    args = parser.parse_args()
    scales = [float(s) for s in args.scales.split(",")]
    command = "python bench/tpch_compare.py " + " ".join(sys.argv[1:])
    report = {
        "command": command.strip(),
        "machine": machine(),
        "git": git_state(),
        "duckdb": version("duckdb"),
        "threads": args.threads,
        "memory_limit": args.memory,
        "min_distinct_units": MIN_UNITS,
        "scales": [compare(scale, args.repeat, args.threads, args.memory) for scale in scales],
    }
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'scale':>5} {'query':<5} {'raw':>9} {'enclave':>9} {'dp':>9} {'http':>9} {'ratio':>6}")
    for entry in report["scales"]:
        for name, q in entry["queries"].items():
            print(f"{entry['scale']:>5g} {name:<5} {q['raw']['p50_ms']:>7.1f}ms "
                  f"{q['enclave']['p50_ms']:>7.1f}ms "
                  f"{q['dp']['p50_ms'] if 'dp' in q else float('nan'):>7.1f}ms "
                  f"{q['http']['p50_ms']:>7.1f}ms "
                  f"{q['enclave_over_raw']:>5.2f}x")  # fmt: skip
        print(f"      peak memory: raw {entry['peak_memory_mib']['raw']} MiB, "
              f"enclave {entry['peak_memory_mib']['enclave']} MiB")  # fmt: skip
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()

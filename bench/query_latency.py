"""End-to-end query latency through the HTTP API, next to raw DuckDB on the same data.

Run: .venv/bin/python bench/query_latency.py [--repeat N]
Prints a table and writes bench/results/query_latency.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import duckdb
import httpx
from demo_server import demo_server
from environment import git_state, machine
from figures import summarise

from sandbox.demo import write_demo_assets

ROOT = Path(__file__).resolve().parent.parent
QUERIES = {
    "group_by": "SELECT district, COUNT(DISTINCT patient_id) AS patients, AVG(cost) AS avg_cost "
    "FROM hospital.visits GROUP BY district",
    "join": "SELECT c.plan, COUNT(*) AS n, SUM(c.paid_amount) AS paid FROM hospital.visits v "
    "JOIN insurance.claims c ON v.patient_id = c.patient_id GROUP BY c.plan",
    "cte_filter": "WITH b AS (SELECT age // 10 AS decade, cost, patient_id FROM hospital.visits "
    "WHERE sex = 'F') SELECT decade, SUM(cost) AS total FROM b GROUP BY decade",
    "rejected": "SELECT patient_name, COUNT(*) FROM hospital.visits GROUP BY patient_name",
}


def _raw_duckdb(folder: Path, repeat: int) -> dict[str, dict]:
    assets = write_demo_assets(folder)
    connection = duckdb.connect(config={"enable_progress_bar": False})
    connection.execute("CREATE SCHEMA hospital; CREATE SCHEMA insurance")
    for asset in assets:
        columns = {c["name"]: c["type"] for c in asset.card["columns"]}
        connection.execute(
            f"CREATE TABLE {asset.card['id']} AS SELECT * FROM read_csv(?, header = true, "
            f"columns = {columns!r})",
            [str(asset.csv_path)],
        )
    figures = {}
    for name, sql in QUERIES.items():
        if name == "rejected":
            continue
        samples = []
        for _ in range(repeat):
            started = time.perf_counter_ns()
            connection.execute(sql).fetchall()
            samples.append(time.perf_counter_ns() - started)
        figures[name] = summarise(samples)
    return figures


def _veil(home: Path, repeat: int) -> dict[str, dict]:
    with demo_server(home) as (url, keys):
        figures = {}
        headers = {"Authorization": f"Bearer {keys['analyst']}"}
        with httpx.Client(base_url=url, headers=headers) as client:
            client.post("/v1/queries", json={"sql": QUERIES["group_by"]})  # start the workers
            for name, sql in QUERIES.items():
                samples = []
                for _ in range(repeat):
                    started = time.perf_counter_ns()
                    client.post("/v1/queries", json={"sql": sql})
                    samples.append(time.perf_counter_ns() - started)
                figures[name] = summarise(samples)
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        raw = _raw_duckdb(Path(folder) / "raw", args.repeat)
        veil = _veil(Path(folder) / "home", args.repeat)
    report = {
        "command": f"python bench/query_latency.py --repeat {args.repeat}",
        "machine": machine(),
        "git": git_state(),
        "duckdb": duckdb.__version__,
        "rows": {"hospital.visits": 30000, "insurance.claims": "about 20000"},
        "veil_http": veil,
        "raw_duckdb_in_process": raw,
    }
    print(f"{'query':<12} {'veil p50':>10} {'veil p95':>10} {'raw p50':>10}")
    for name in QUERIES:
        raw_p50 = raw.get(name, {}).get("p50_ms", float("nan"))
        print(
            f"{name:<12} {veil[name]['p50_ms']:>9.1f}ms {veil[name]['p95_ms']:>9.1f}ms "
            f"{raw_p50:>9.1f}ms"
        )
    out = ROOT / "bench" / "results" / "query_latency.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

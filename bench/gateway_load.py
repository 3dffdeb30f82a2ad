"""Gateway load: one small aggregate under wrk at several concurrencies, Veil against a FastAPI
baseline that runs the same DuckDB query with no governance.

Run: .venv/bin/python bench/gateway_load.py [--duration S] [--concurrency 1,8,32] [--processes N]
    [--runs R] [--out FILE]
Prints a table and writes bench/results/gateway_load.json (or FILE). Needs `wrk` (Debian's package;
`make bench` installs it) and `ss` (iproute2).

For each target and concurrency: requests per second, latency percentiles (wrk's own
histogram), errors (sockets, timeouts, non-2xx), and for Veil the ledger entries gained next
to the queries it answered by its own count (`veil_queries_total`): every answer, released or
refused, must have its entry. Both serve N processes (default: one per core) on one port; each
Veil process has its default two enclave workers, each baseline process one DuckDB.

Processes share one listening socket, and asyncio accepts every waiting connection at once, so
wrk's burst of keep-alive connections can land mostly in one process, which then does all the
work. Each concurrency therefore runs R times (default 3); the run with the median throughput is
the headline, and every run records how its connections were spread over the processes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
from demo_server import demo_server, serving
from environment import git_state, machine, version

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "gateway_load.json"
SQL = "SELECT district, COUNT(*) AS visits FROM hospital.visits GROUP BY district"
WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK {{\\"requests\\": %d, \\"duration_us\\": %d, \\"connect\\": %d, \\"read\\": %d, " ..
    "\\"write\\": %d, \\"status\\": %d, \\"timeout\\": %d, \\"p50_us\\": %d, " ..
    "\\"p90_us\\": %d, \\"p99_us\\": %d, \\"max_us\\": %d, \\"mean_us\\": %.1f}}\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
"""


def connections_per_process(port: str) -> list[int]:
    """How the open connections to `port` are spread over the serving processes, most first."""
    listing = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return sorted(Counter(re.findall(r"pid=(\d+)", listing)).values(), reverse=True)


def wrk(url: str, key: str, concurrency: int, duration: int) -> dict:
    spread: list[list[int]] = []
    sampler = threading.Timer(
        duration / 2, lambda: spread.append(connections_per_process(url.rsplit(":", 1)[1]))
    )
    sampler.start()
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(WRK_SCRIPT.format(body=json.dumps({"sql": SQL}), key=key))
        script.flush()
        threads = min(2, concurrency)
        done = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{duration}s", "--timeout", "30s",
             "-s", script.name, f"{url}/v1/queries"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    sampler.join()
    line = next(line for line in done.stdout.splitlines() if line.startswith("WRK "))
    raw = json.loads(line[4:])
    seconds = raw["duration_us"] / 1e6
    errors = {k: raw[k] for k in ("connect", "read", "write", "status", "timeout")}
    return {
        "concurrency": concurrency,
        "requests": raw["requests"],
        "requests_per_s": round(raw["requests"] / seconds, 1),
        "answered_2xx": raw["requests"] - raw["status"],
        "errors": errors,
        "error_total": sum(errors.values()),
        "latency_ms": {k.replace("_us", "_ms"): round(raw[k] / 1000, 2)
                       for k in ("p50_us", "p90_us", "p99_us", "max_us", "mean_us")},
        "connections_per_process": spread[0] if spread else [],
    }  # fmt: skip


def median_run(runs: list[dict]) -> dict:
    """The run with the median throughput, carrying every run's throughput, p99 and spread."""
    middle = sorted(runs, key=lambda run: run["requests_per_s"])[len(runs) // 2]
    summary = [
        {key: run[key] for key in ("requests_per_s", "error_total", "connections_per_process")}
        | {"p99_ms": run["latency_ms"]["p99_ms"]}
        for run in runs
    ]
    return {**middle, "error_total": sum(run["error_total"] for run in runs), "runs": summary}


def _veil_counts(client: httpx.Client, scrape: dict[str, str]) -> tuple[int, int]:
    """(ledger tree size, queries answered by Veil's own count) right now."""
    size = client.get("/v1/ledger/checkpoint").json()["tree_size"]
    text = client.get("/metrics", headers=scrape).text
    answered = sum(
        float(match.group(1))
        for match in re.finditer(r'^veil_queries_total\{outcome="[a-z_]+"\} (\S+)$', text, re.M)
    )
    return size, int(answered)


def _settled(client: httpx.Client, scrape: dict[str, str]) -> tuple[int, int]:
    """Counts once the requests wrk left in flight have ended."""
    last = _veil_counts(client, scrape)
    while True:
        time.sleep(0.5)
        now = _veil_counts(client, scrape)
        if now == last:
            return now
        last = now


def run_veil(concurrencies: list[int], duration: int, processes: int, runs: int) -> list[dict]:
    # Room in the query queue for every connection wrk opens: none is refused.
    room = str(max(concurrencies))
    env = {
        "VEIL_QUERY_QUEUE_SIZE": room,
        "VEIL_QUERY_QUEUE_PER_PRINCIPAL": room,
        "VEIL_PROCESSES": str(processes),
    }
    results = []
    with tempfile.TemporaryDirectory() as folder, demo_server(Path(folder), env) as (url, keys):
        supervisor = {"Authorization": f"Bearer {keys['supervisor']}"}
        token = (Path(folder) / "keys" / "metrics.token").read_text().strip()
        scrape = {"Authorization": f"Bearer {token}"}
        # No keep-alive, so no idle connection of ours shows in a run's spread.
        client = httpx.Client(
            base_url=url,
            timeout=30,
            headers=supervisor,
            limits=httpx.Limits(max_keepalive_connections=0),
        )
        wrk(url, keys["analyst"], 8, 3)  # warm-up: workers attached, caches filled
        for concurrency in concurrencies:
            before = _settled(client, scrape)
            figures = median_run(
                [wrk(url, keys["analyst"], concurrency, duration) for _ in range(runs)]
            )
            after = _settled(client, scrape)
            figures["ledger_entries_gained"] = after[0] - before[0]
            figures["queries_answered_by_veil"] = after[1] - before[1]
            figures["ledger_matches_answers"] = (
                figures["ledger_entries_gained"] == figures["queries_answered_by_veil"]
            )
            results.append(figures)
        client.close()
    return results


def run_baseline(concurrencies: list[int], duration: int, processes: int, runs: int) -> list[dict]:
    command = [sys.executable, str(ROOT / "bench" / "baseline_app.py"), str(processes)]
    with serving(command) as url:
        wrk(url, "none", 8, 3)
        return [
            median_run([wrk(url, "none", concurrency, duration) for _ in range(runs)])
            for concurrency in concurrencies
        ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS, help="the JSON file written")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk, or make bench)")
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    veil = run_veil(concurrencies, args.duration, args.processes, args.runs)
    baseline = run_baseline(concurrencies, args.duration, args.processes, args.runs)
    for ours, theirs in zip(veil, baseline, strict=True):
        ours["share_of_baseline"] = round(ours["requests_per_s"] / theirs["requests_per_s"], 3)
    report = {
        "command": ("python bench/gateway_load.py " + " ".join(sys.argv[1:])).strip(),
        "machine": machine(),
        "git": git_state(),
        "wrk": " ".join(subprocess.run(["wrk", "--version"], capture_output=True, text=True)
                        .stdout.split()[:2]),
        "fastapi": version("fastapi"),
        "sql": SQL,
        "duration_s": args.duration,
        "processes": args.processes,
        "runs": args.runs,
        "veil": veil,
        "baseline": baseline,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'c':>3} {'veil rps':>9} {'p50':>8} {'p99':>8} {'base rps':>9} {'p50':>8} "
          f"{'share':>6} {'errors':>6} ledger")  # fmt: skip
    for ours, theirs in zip(veil, baseline, strict=True):
        print(f"{ours['concurrency']:>3} {ours['requests_per_s']:>9.1f} "
              f"{ours['latency_ms']['p50_ms']:>6.1f}ms {ours['latency_ms']['p99_ms']:>6.1f}ms "
              f"{theirs['requests_per_s']:>9.1f} {theirs['latency_ms']['p50_ms']:>6.1f}ms "
              f"{ours['share_of_baseline']:>6.2f} {ours['error_total']:>6} "
              f"{ours['ledger_entries_gained']}/{ours['queries_answered_by_veil']}")  # fmt: skip
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()

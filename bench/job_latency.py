"""Job latency: the sealed runner's start overhead, and submit-to-result over the HTTP API.

Run: .venv/bin/python bench/job_latency.py [--repeat N]
Prints a table and writes bench/results/job_latency.json.

"runner" times `JobRunner.run` for a job that does nothing: fork and exec of a fresh
interpreter, the whole OS seal, compile, run, exit report. That is the start overhead a job
pays on top of its own work. "http" times POST /v1/jobs until GET /v1/jobs/{id} shows an
ended status (polled every 2 ms) against a demo server, for a trivial job and for one issuing
ten aggregate queries, each of which goes through the guard, the policy, the enclave and the ledger.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

import httpx
from demo_server import demo_server
from environment import git_state, machine, version
from figures import summarise

from sandbox.jobs.runner import Answer, JobLimits, JobRunner

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "job_latency.json"
ENDED = {"succeeded", "failed", "rejected", "review", "cancelled", "timeout"}
TRIVIAL = "x = 1"
TEN_QUERIES = """
groups = ["district", "department", "sex", "diagnosis", "age // 10"]
tables = 0
for i in range(10):
    group = groups[i % len(groups)]
    answer = sql("SELECT " + group + " AS g, COUNT(*) AS n, AVG(cost) AS mean_cost "
                 "FROM hospital.visits GROUP BY " + group)
    tables += len(answer["rows"])
"""


def runner_overhead(repeat: int) -> dict:
    runner = JobRunner()
    runner.seal_report()  # the zygote's one-off start

    def no_sql(text: str) -> Answer:
        raise AssertionError("the trivial job asks nothing")

    samples = []
    for i in range(repeat):
        started = time.perf_counter_ns()
        run = runner.run(f"bench-{i}", TRIVIAL, JobLimits(), no_sql, threading.Event())
        samples.append(time.perf_counter_ns() - started)
        assert run.status == "succeeded", run
    runner.close()
    return summarise(samples)


def http_latency(repeat: int) -> dict:
    with tempfile.TemporaryDirectory() as folder, demo_server(Path(folder) / "home") as (url, keys):
        headers = {"Authorization": f"Bearer {keys['analyst']}"}
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
            return {
                name: _timed_jobs(client, code, repeat)
                for name, code in (("trivial", TRIVIAL), ("ten_queries", TEN_QUERIES))
            }


def _timed_jobs(client: httpx.Client, code: str, repeat: int) -> dict:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter_ns()
        job_id = client.post("/v1/jobs", json={"code": code}).json()["id"]
        while (status := client.get(f"/v1/jobs/{job_id}").json()["status"]) not in ENDED:
            time.sleep(0.002)
        samples.append(time.perf_counter_ns() - started)
        assert status == "succeeded", status
    return summarise(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=100)
    args = parser.parse_args()
    runner = runner_overhead(args.repeat)
    http = http_latency(max(10, args.repeat // 2))
    report = {
        "command": f"python bench/job_latency.py --repeat {args.repeat}",
        "machine": machine(),
        "git": git_state(),
        "restrictedpython": version("RestrictedPython"),
        "runner_start_overhead": runner,
        "http_submit_to_result": http,
    }
    print(f"{'what':<28} {'p50':>9} {'p95':>9}")
    rows = [("runner start overhead", runner)]
    rows += [(f"http {name}", figures) for name, figures in http.items()]
    for name, figures in rows:
        print(f"{name:<28} {figures['p50_ms']:>7.1f}ms {figures['p95_ms']:>7.1f}ms")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

"""Gateway CPU per small query: the gateway process's own CPU time over N sequential queries on
one connection, its enclave worker processes left out.

Run: .venv/bin/python bench/gateway_cpu.py [--requests N] [--warmup W] [--profile]
Two small aggregates as the demo's analyst: a differentially private one (asked again, it is
answered from the answer store) and one answered under thresholds alone (a TPC-H customer table
at scale factor 0.01, which holds no personal data; the bench's operator policy allows that).
Prints a table and writes bench/results/gateway_cpu.json. With --profile each query runs once
more under py-spy (500 samples a second of the thread holding the GIL), whose raw stacks go to
bench/results/gateway_cpu_<query>.txt.gz and whose top functions, by own and by total time, and
share per package go to the JSON. Its samples overstate the event loop's thread against the
CPU clock (about 60% of samples for a third of the CPU): read its shares within a thread, and
the event loop's CPU from the per-thread figure, which is exact.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
from demo_server import demo_server
from environment import git_state, machine, version
from figures import summarise
from tpch_data import PROVIDER, tpch_assets

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SCALE = 0.01
QUERIES = {
    "dp": "SELECT district, COUNT(*) AS visits FROM hospital.visits GROUP BY district",
    "thresholds": "SELECT c_mktsegment, COUNT(*) AS customers FROM tpch.customer "
    "GROUP BY c_mktsegment",
}
TOP = 15
VEIL = {"gateway", "console", "services", "governance", "ledger", "policies", "sandbox"}
# The server's entry, on every stack of the event loop's thread.
ENTRY = ("(gateway/cli.py)", "(gateway/serving.py)")


def gateway_pid() -> int:
    """The `veil demo` process this script started (its enclave workers are its children)."""
    mine = str(os.getpid())
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = stat.read_text().rsplit(")", 1)[1].split()[1]
            command = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError):
            continue
        if parent == mine and b"gateway.cli" in command:
            return int(stat.parent.name)
    raise RuntimeError("the gateway process was not found")


def cpu_seconds(stat: Path) -> tuple[float, float]:
    """User and system CPU from a /proc `stat` file: a process's (all its threads, not its
    children) or one thread's."""
    fields = stat.read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def thresholds_grant(client: httpx.Client, keys: dict[str, str]) -> str:
    """Register tpch.customer through the API and give the analyst an approved grant on it."""

    def call(who: str, path: str, **request: object) -> dict:
        answer = client.post(path, headers={"Authorization": f"Bearer {keys[who]}"}, **request)
        answer.raise_for_status()
        return answer.json()

    customer = next(a for a in tpch_assets(SCALE) if a.card["id"] == "tpch.customer")
    created = call("admin", "/v1/principals", json={"id": PROVIDER, "roles": ["provider"],
                                                     "org": PROVIDER})  # fmt: skip
    keys = dict(keys, **{PROVIDER: created["api_key"]})
    with customer.parquet.open("rb") as data:
        call(PROVIDER, "/v1/assets", data={"card": json.dumps(customer.card)},
             files={"file": ("customer.parquet", data)})  # fmt: skip
    grant = call("analyst", "/v1/grants", json={
        "assets": ["tpch.customer"], "purpose": "public_welfare", "scenario": "benchmark",
        "methods": ["sql"], "valid_until": "2099-01-01T00:00:00Z",
    })["id"]  # fmt: skip
    call(PROVIDER, f"/v1/grants/{grant}/approve")
    call("supervisor", f"/v1/grants/{grant}/approve")
    return grant


def ask(client: httpx.Client, body: dict, requests: int) -> list[int]:
    """`requests` sequential queries; each one's latency in nanoseconds."""
    samples = []
    for _ in range(requests):
        started = time.perf_counter_ns()
        answer = client.post("/v1/queries", json=body)
        samples.append(time.perf_counter_ns() - started)
        answer.raise_for_status()
    return samples


def measure(client: httpx.Client, pid: int, body: dict, requests: int) -> dict:
    """Gateway CPU per query, and how much of it the event loop's thread (the main one) spent;
    the rest is the threads the routes and the gate hand work to, and background threads."""
    process, loop = Path(f"/proc/{pid}/stat"), Path(f"/proc/{pid}/task/{pid}/stat")
    before, loop_before = cpu_seconds(process), sum(cpu_seconds(loop))
    samples = ask(client, body, requests)
    after, loop_after = cpu_seconds(process), sum(cpu_seconds(loop))
    user, system = after[0] - before[0], after[1] - before[1]

    def per_query(seconds: float) -> float:
        return round(1000 * seconds / requests, 3)

    return {
        "requests": requests,
        "gateway_cpu_s": {"user": round(user, 2), "system": round(system, 2)},
        "gateway_cpu_ms_per_query": per_query(user + system),
        "event_loop_thread_cpu_ms_per_query": per_query(loop_after - loop_before),
        "latency": summarise(samples),
    }


def profile(client: httpx.Client, pid: int, body: dict, requests: int, out: Path) -> dict:
    """The same queries under py-spy; its raw stacks gzipped to `out`, summarised."""
    with tempfile.TemporaryDirectory() as folder:
        stacks = Path(folder) / "stacks.txt"
        spy = subprocess.Popen(
            [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(pid),
             "--rate", "500", "--format", "raw", "--nolineno", "--gil", "--output", str(stacks)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            ask(client, body, requests)
        finally:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file when interrupted
            spy.wait(timeout=60)
        raw = stacks.read_text()
    out.write_bytes(gzip.compress(raw.encode()))
    return hot_spots(raw)


def hot_spots(raw: str) -> dict:
    """In per cent of all samples: the top functions by own time (the frame sampled), Veil's
    own top functions by total time (on the stack; the server's entry left out), and each
    package's own time."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    samples = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames, n = stack.split(";"), int(count)
        samples += n
        own[frames[-1]] += n
        packages[_package(frames[-1])] += n
        for frame in set(frames):
            if _package(frame) in VEIL and not frame.endswith(ENTRY):
                total[frame] += n

    def share(counts: Counter[str], top: int) -> list[list]:
        return [[name, round(100 * n / samples, 1)] for name, n in counts.most_common(top)]

    return {
        "samples": samples,
        "own_pct": share(own, TOP),
        "total_pct": share(total, TOP),
        "package_own_pct": share(packages, 2 * TOP),
    }


def _package(frame: str) -> str:
    """`execute (sqlalchemy/engine/base.py)` → `sqlalchemy`; a stdlib module names itself."""
    where = frame.rpartition(" (")[2].rstrip(")")
    return where.split("/", 1)[0].removesuffix(".py")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the folder the figures go to")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    figures: dict[str, dict] = {}
    with (
        tempfile.TemporaryDirectory() as folder,
        demo_server(Path(folder)) as (url, keys),
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        pid = gateway_pid()
        bodies = {"dp": {"sql": QUERIES["dp"]},
                  "thresholds": {"sql": QUERIES["thresholds"],
                                 "grant_id": thresholds_grant(client, keys)}}  # fmt: skip
        client.headers["Authorization"] = f"Bearer {keys['analyst']}"
        for name, body in bodies.items():
            ask(client, body, args.warmup)
            figures[name] = measure(client, pid, body, args.requests)
            if args.profile:
                out = args.out / f"gateway_cpu_{name}.txt.gz"
                figures[name]["profile"] = profile(client, pid, body, args.requests, out)
    report = {
        "command": "python bench/gateway_cpu.py "
        f"--requests {args.requests} --warmup {args.warmup}" + " --profile" * args.profile,
        "machine": machine(),
        "git": git_state(),
        "versions": {p: version(p) for p in ("fastapi", "starlette", "uvicorn", "sqlalchemy")},
        "queries": {name: {"sql": QUERIES[name], **figures[name]} for name in QUERIES},
    }
    print(f"{'query':<12} {'gateway CPU / query':>20} {'(event loop)':>13} {'p50':>9} {'p95':>9}")
    for name, entry in figures.items():
        latency = entry["latency"]
        print(
            f"{name:<12} {entry['gateway_cpu_ms_per_query']:>17.3f} ms "
            f"{entry['event_loop_thread_cpu_ms_per_query']:>10.3f} ms "
            f"{latency['p50_ms']:>6.2f} ms {latency['p95_ms']:>6.2f} ms"
        )
        for kind in ("own_pct", "total_pct") if "profile" in entry else ():
            print(f"  top by {kind.removesuffix('_pct')} time:")
            for frame, pct in entry["profile"][kind]:
                print(f"    {pct:5.1f}%  {frame}")
    out = args.out / "gateway_cpu.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()

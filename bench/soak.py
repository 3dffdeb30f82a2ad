"""Soak: a bounded mixed-traffic run on PostgreSQL through two gateway processes, checked for
errors, lost entries and memory growth.

Run: .venv/bin/python bench/soak.py [--duration S] [--database-url URL] [--out PATH]
    [--sample-s S] [--seed N] [--flat-mb-per-min M] [--peak-tolerance-mb MB]
    [--policy-engine embedded|opa]
Prints a table and writes bench/results/soak.json (or --out). Exits 1 when a check fails.
A default run takes about 11 minutes: 600 s of traffic, set-up and the checks.

Without --database-url it starts a throw-away PostgreSQL as scripts/with-postgres does
(initdb into a temporary folder, pg_ctl on a free loopback port, fsync off); with it, the
database named must be empty. On one home and that database it runs `veil demo` and then
`veil serve`, two gateway processes, and drives them for --duration seconds (default 600)
from client threads that alternate between the two:

- private queries (the demo's hospital visits, differential privacy), new and repeated
  questions; threshold queries on a no-personal-data asset the soak registers; paid queries
  (the fintech developer on insurance claims); small jobs that ask one question and publish;
- grant churn all along: a developer requests a grant, its provider and a supervisor approve,
  it queries under it, a party revokes it, one more query under it must be refused;
- a revocation storm in the middle fifth of the run: grants requested, approved and revoked
  again within a fraction of a second while other threads query under them.

Expected refusals are counted by code, not as errors: 403 under a revoked grant, 409 for a
query its revocation cancelled or for the same private question being answered at that
moment, 429 from a full queue. Errors are 5xx, connection failures, timeouts, any other 4xx,
a 200 without a receipt, a job that failed or timed out, and a 200 for a query sent after its
grant's revocation had returned.

Every few seconds it samples the resident memory of each gateway process and, separately, of
its children (enclave workers, the job zygote; short-lived job processes and the replaced
policy evaluators are summarised). Flat memory means bounded: for every gateway process, and
each gateway's enclave workers together, after the first third (warm-up) the last third's
peak is at most --peak-tolerance-mb (default 5) above the middle third's, and the slope is at
most --flat-mb-per-min (default 2). The slope judged for enclave workers, which are replaced
every `VEIL_WORKER_LIFETIME_S`, is the trend over whole recycle periods (of the mean over the
last period) when the run holds enough of it, else, as for the gateways, the slope over the
last third, after the storm (`judge`). Clients let a pooled connection go after 2 s idle,
before the server's keep-alive closes it (`KEEPALIVE_EXPIRY_S`). With --policy-engine opa
both gateways ask one OPA server (the `opa` on PATH), whose memory is sampled too. At the end: every
receipt is in the ledger with the same leaf hash (recomputed from the entry's text), every
grant change and job submission that was accepted has its entry, the settlement equals the
sum of the charges received, no job is left queued or running, and `veil ledger verify`
exits 0.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from environment import git_state, machine, version
from figures import summarise

from governance import SUPERVISOR_PARTY
from services.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "soak.json"
VEIL = [sys.executable, "-m", "gateway.cli"]
ENDED = {"succeeded", "failed", "rejected", "review", "cancelled", "timeout"}
JOB_ERRORS = {"failed", "timeout"}
# Refusals that are the service working as it should, by kind of request.
QUERY_REFUSALS = {(409, "CONFLICT"), (429, "RATE_LIMITED"), (429, "BUDGET_EXHAUSTED")}
UNDER_GRANT_REFUSALS = QUERY_REFUSALS | {(403, "POLICY_DENIED"), (409, "CANCELLED")}
JOB_REFUSALS = {(429, "RATE_LIMITED"), (429, "BUDGET_EXHAUSTED")}
# A pooled connection idle this long is not reused. uvicorn closes one idle for its
# `timeout_keep_alive` (5 s unless set), and a request sent on a connection the server is
# closing fails (`ReadError`); httpx's own expiry is also 5 s, so the client's idle clock must
# run out well before the server's, which starts earlier (when it sends the response).
KEEPALIVE_EXPIRY_S = 2.0
# Wide budgets (thousands of new questions) and thresholds alone for the soak's own asset,
# whose card says it holds no personal data.
OPERATOR_MODULE = """package veil.authz

import rego.v1

dp_terms := {
	"epsilon_per_period": 1000000,
	"cap_epsilon_per_period": 1000000,
	"delta_per_period": 0.01,
	"cap_delta_per_period": 0.1,
}

thresholds_only_assets contains "soak.households"
"""
HOUSEHOLDS = {
    "id": "soak.households",
    "title": "Households (soak benchmark)",
    "provider": "city-hospital",
    "classification": "L2",
    "domain": "civil",
    "rights": {"holder": "city-hospital", "personal_data": False},
    "columns": [
        {"name": "household", "type": "VARCHAR", "role": "privacy_unit"},
        {"name": "district", "type": "VARCHAR", "role": "dimension"},
        {"name": "age", "type": "INTEGER", "role": "dimension"},
        {"name": "size", "type": "INTEGER", "role": "dimension"},
        {"name": "income", "type": "INTEGER", "role": "measure", "bounds": [0, 500000]},
    ],
    "revenue_shares_bp": {"city-hospital": 10000},
}
DISTRICTS = ["gulou", "taijiang", "cangshan", "jinan", "mawei", "changle"]
REPEATED = {
    "private": [
        "SELECT district, COUNT(*) AS n FROM hospital.visits GROUP BY district",
        "SELECT sex, COUNT(*) AS n, AVG(cost) AS mean_cost FROM hospital.visits GROUP BY sex",
        "SELECT department, SUM(cost) AS total FROM hospital.visits GROUP BY department",
    ],
    "thresholds": [
        "SELECT district, COUNT(*) AS n FROM soak.households GROUP BY district",
        "SELECT size, COUNT(*) AS n, SUM(income) AS total FROM soak.households GROUP BY size",
    ],
    "paid": [
        "SELECT plan, COUNT(*) AS claims FROM insurance.claims GROUP BY plan",
        "SELECT status, SUM(paid_amount) AS paid FROM insurance.claims GROUP BY status",
    ],
}


# --- PostgreSQL ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def pg_bin() -> Path:
    """Debian's newest PostgreSQL binaries (scripts/with-postgres installs them)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: p.parts)
    if not found:
        raise SystemExit("PostgreSQL is not installed: apt-get install postgresql, or pass "
                         "--database-url")  # fmt: skip
    return found[-1].parent


@contextmanager
def postgres() -> Iterator[tuple[str, str]]:
    """A throw-away server on loopback, as scripts/with-postgres starts one; yield its URL and
    version, and remove it afterwards."""
    bin_dir = pg_bin()
    folder = Path(tempfile.mkdtemp(prefix="veil-soak-pg."))
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_pg:
        shutil.chown(folder, "postgres")
    port = free_port()
    data = folder / "db"

    def run(*command: str) -> str:
        done = subprocess.run([*as_pg, *command], capture_output=True, text=True, check=True)
        return done.stdout

    run(str(bin_dir / "initdb"), "-D", str(data), "-U", "veil", "--auth=trust", "-E", "UTF8")
    options = (f"-c listen_addresses=127.0.0.1 -c port={port} "
               f"-c unix_socket_directories={folder} -c fsync=off")  # fmt: skip
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-w", "-o", options,
        "start")  # fmt: skip
    try:
        run(str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "veil", "soak")
        server = run(str(bin_dir / "postgres"), "--version").split()[2]
        yield f"postgresql+psycopg://veil@127.0.0.1:{port}/soak", f"PostgreSQL {server}, fsync off"
    finally:
        subprocess.run([*as_pg, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
                       capture_output=True)  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)


# --- gateways -----------------------------------------------------------------------------


@dataclass
class Gateway:
    name: str
    url: str
    process: subprocess.Popen
    log: Path


def start_gateway(name: str, command: str, home: Path, env: dict[str, str]) -> Gateway:
    """`veil <command>` on a free port, once /readyz answers 200."""
    port = free_port()
    log = home.parent / f"{name}.log"
    process = subprocess.Popen(
        [*VEIL, command, "--home", str(home), "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited at start-up:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return Gateway(name, url, process, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    process.kill()
    raise SystemExit(f"{name} did not become ready")


def stop_gateway(gateway: Gateway) -> int | None:
    gateway.process.terminate()
    try:
        return gateway.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        gateway.process.kill()
        gateway.process.wait()
        return None


def log_errors(gateway: Gateway, limit: int = 40) -> list[str]:
    """The gateway log's error lines (tracebacks' last lines included), the last `limit`."""
    lines = gateway.log.read_text(errors="replace").splitlines()
    wanted = [line for line in lines if "ERROR" in line or "Error:" in line or "Exception" in line]
    return wanted[-limit:]


# --- memory -------------------------------------------------------------------------------


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def role(pid: int) -> str:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "gone"
    if "multiprocessing.spawn" in command:
        return "enclave worker"
    if "sandbox.jobs.zygote" in command:
        return "job zygote"
    if "resource_tracker" in command:
        return "resource tracker"
    if "policies.rego_worker" in command:
        return "policy evaluator"
    return "job"


def children_map() -> dict[int, list[int]]:
    """Every process's children, from /proc."""
    children: dict[int, list[int]] = defaultdict(list)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces; the parent follows it.
        parent = int(text.rsplit(")", 1)[1].split()[1])
        children[parent].append(int(stat.parent.name))
    return children


def descendants(pid: int, children: dict[int, list[int]]) -> list[int]:
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo += children.get(child, [])
    return found


PARTS = ("main", "enclave worker", "job zygote", "whole tree")
# Replaced as they go (jobs end, the embedded policy evaluator after 1,000 decisions): only the
# largest of each is reported.
SHORT_LIVED = {"job": "jobs (short-lived)", "policy evaluator": "policy evaluators (replaced)"}
# Judged for flat memory: each main process (gateways, OPA) and each gateway's enclave workers.
JUDGED = ("main", "enclave workers")


@dataclass
class MemorySampler:
    """Samples each gateway's process tree every `every_s` seconds on its own thread: the
    gateway process, its enclave workers (summed: they are replaced when a query is cancelled
    or the assets change), its job zygote, and the whole tree with the short-lived jobs."""

    gateways: list[Gateway]
    every_s: float
    started: float = field(default_factory=time.monotonic)
    # (gateway, part) -> [(seconds since start, MB)]
    series: dict[tuple[str, str], list[tuple[float, float]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    # (gateway, role) -> the largest RSS seen of each process of that role, by pid
    largest: dict[tuple[str, str], dict[int, float]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    live_workers: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    stop: threading.Event = field(default_factory=threading.Event)

    def sample(self) -> None:
        at = time.monotonic() - self.started
        children = children_map()
        for gateway in self.gateways:
            main = gateway.process.pid
            parts: Counter = Counter()
            workers = 0
            tree = [main, *descendants(main, children)]
            for pid in tree:
                mb = rss_mb(pid)
                if mb is None:
                    continue
                kind = "main" if pid == main else role(pid)
                parts[kind] += mb
                parts["whole tree"] += mb
                workers += kind == "enclave worker"
                seen = self.largest[(gateway.name, kind)]
                seen[pid] = max(seen.get(pid, 0.0), mb)
            self.live_workers[gateway.name].append(workers)
            # A process without children (the OPA server) has only itself to show.
            for part in PARTS if len(tree) > 1 else ("main",):
                self.series[(gateway.name, part)].append((at, parts[part]))

    def run(self) -> None:
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(self.every_s)

    def report(self, duration: float, lifetime_s: float, tolerance_mb: float) -> list[dict]:
        rows = []
        for (name, part), points in self.series.items():
            row = {
                "gateway": name,
                "process": "enclave workers" if part == "enclave worker" else part,
                "samples": len(points),
                "start_mb": round(points[0][1], 1),
                "end_mb": round(points[-1][1], 1),
                "max_mb": round(max(mb for _, mb in points), 1),
                **judge(points, duration, lifetime_s if part == "enclave worker" else None,
                        tolerance_mb),
                "samples_s_mb": [[round(t), round(mb, 1)] for t, mb in points],
            }  # fmt: skip
            if part == "enclave worker":
                largest = self.largest[(name, part)]
                row["live"] = sorted(set(self.live_workers[name]))
                row["processes_seen"] = len(largest)
                row["largest_one_mb"] = round(max(largest.values(), default=0.0), 1)
            rows.append(row)
        for (name, kind), largest in self.largest.items():
            if kind in SHORT_LIVED:
                rows.append({"gateway": name, "process": SHORT_LIVED[kind],
                             "processes_seen": len(largest),
                             "largest_one_mb": round(max(largest.values()), 1)})  # fmt: skip
        return rows


def judge(
    points: list[tuple[float, float]],
    duration: float,
    period_s: float | None,
    tolerance_mb: float,
) -> dict:
    """How one memory series ended, and what flat (bounded) memory is judged by.

    The first third of the run is warm-up. Peaks are taken after a 3-sample running median,
    since one sample's spike is a worker and its successor alive together, not growth. The
    slope judged is, for enclave workers (replaced every `period_s`), the trend over whole
    recycle periods: the least-squares slope of the mean over the last period, which a
    bounded sawtooth holds level. Where the run has too little of that after the warm-up
    (less than half a period of such means), and for processes never replaced, it is the
    least-squares slope over the last third, which starts after the revocation storm (the
    second half starts inside it; that slope is reported too)."""
    smooth = running_median(points)
    middle = [mb for t, mb in smooth if duration / 3 <= t < 2 * duration / 3]
    last = [mb for t, mb in smooth if t >= 2 * duration / 3]
    peak_middle = max(middle, default=None)
    peak_last = max(last, default=None)
    rise = None if peak_middle is None or peak_last is None else round(peak_last - peak_middle, 1)
    half = slope_per_min([(t, mb) for t, mb in points if t >= duration / 2])
    late = slope_per_min([(t, mb) for t, mb in points if t >= 2 * duration / 3])
    trend = period_trend(smooth, period_s, duration / 3) if period_s else None
    return {
        "peak_middle_third_mb": None if peak_middle is None else round(peak_middle, 1),
        "peak_last_third_mb": None if peak_last is None else round(peak_last, 1),
        "peak_rise_mb": rise,
        "peak_tolerance_mb": tolerance_mb,
        "second_half_slope_mb_per_min": half,
        "last_third_slope_mb_per_min": late,
        "recycle_period_s": period_s,
        "whole_period_trend_mb_per_min": trend,
        "judged_slope_mb_per_min": trend if trend is not None else late,
    }


def running_median(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Each sample replaced by the median of it and its two neighbours (at either end, the
    lower of it and its one neighbour)."""
    smooth = []
    for i, (t, _) in enumerate(points):
        near = sorted(mb for _, mb in points[max(0, i - 1) : i + 2])
        smooth.append((t, near[(len(near) - 1) // 2]))
    return smooth


def period_trend(
    points: list[tuple[float, float]], period_s: float, after_s: float
) -> float | None:
    """The slope of the mean over the last `period_s` seconds, from `after_s` (and a whole
    period in) to the end; None with less than half a period of it."""
    begin = max(after_s, points[0][0] + period_s)
    means = []
    for t, _ in points:
        if t < begin:
            continue
        window = [mb for at, mb in points if t - period_s < at <= t]
        means.append((t, sum(window) / len(window)))
    if not means or means[-1][0] - means[0][0] < period_s / 2:
        return None
    return slope_per_min(means)


def bounded(row: dict, limit: float) -> bool:
    """A series is flat when its last third's peak is within the tolerance of its middle
    third's and its judged slope is at most `limit` MB/min."""
    rise, slope = row["peak_rise_mb"], row["judged_slope_mb_per_min"]
    return (rise is None or rise <= row["peak_tolerance_mb"]) and (slope or 0.0) <= limit


def slope_per_min(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of MB over minutes."""
    if len(points) < 3:
        return None
    mean_t = sum(t for t, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return None
    per_s = sum((t - mean_t) * (y - mean_y) for t, y in points) / spread
    return round(per_s * 60, 3)


# --- traffic ------------------------------------------------------------------------------


@dataclass
class Receipt:
    kind: str
    index: int
    leaf_hash: str
    amount_minor: int


@dataclass
class Tally:
    """What every client thread saw, under one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: Counter = field(default_factory=Counter)
    ok: Counter = field(default_factory=Counter)
    refused: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    errors: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    latency_ns: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    receipts: list[Receipt] = field(default_factory=list)
    # Accepted changes whose ledger entries must exist: (type, grant or job id, party or None).
    changes: list[tuple[str, str, str | None]] = field(default_factory=list)
    jobs: dict[str, str] = field(default_factory=dict)
    asked: set[str] = field(default_factory=set)
    # The first connection failures, whole: when, where and what the transport said.
    failures: list[dict] = field(default_factory=list)

    def error(self, kind: str, what: str) -> None:
        with self.lock:
            self.errors[kind][what] += 1

    def change(self, entry_type: str, subject: str, party: str | None = None) -> None:
        with self.lock:
            self.changes.append((entry_type, subject, party))

    def fresh(self, sql: str) -> bool:
        """True the first time `sql` is asked."""
        with self.lock:
            if sql in self.asked:
                return False
            self.asked.add(sql)
            return True


@dataclass
class Clients:
    """One keep-alive client per principal and gateway, shared by the threads (httpx clients
    are thread-safe); each request goes to the next gateway in turn."""

    gateways: list[Gateway]
    keys: dict[str, str]
    tally: Tally
    turn: int = 0

    def __post_init__(self) -> None:
        self._clients: dict[tuple[str, int], httpx.Client] = {}
        self._lock = threading.Lock()

    def client(self, who: str, gateway: int | None = None) -> httpx.Client:
        with self._lock:
            if gateway is None:
                self.turn += 1
                gateway = self.turn % len(self.gateways)
            key = (who, gateway)
            if key not in self._clients:
                self._clients[key] = httpx.Client(
                    base_url=self.gateways[gateway].url,
                    headers={"Authorization": f"Bearer {self.keys[who]}"},
                    timeout=60,
                    limits=httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY_S),
                )
            return self._clients[key]

    def call(
        self,
        kind: str,
        who: str,
        method: str,
        path: str,
        expected: set[tuple[int, str]] = frozenset(),
        **options: Any,
    ) -> httpx.Response | None:
        """One request, counted: ok (2xx), refused (an expected status and code) or an error.
        Returns the response when it was 2xx or an expected refusal."""
        client = self.client(who)
        with self.tally.lock:
            self.tally.requests[kind] += 1
        started = time.perf_counter_ns()
        try:
            response = client.request(method, path, **options)
        except httpx.TimeoutException:
            self.tally.error(kind, "timeout")
            return None
        except httpx.TransportError as exc:
            self.tally.error(kind, f"connection ({type(exc).__name__})")
            with self.tally.lock:
                if len(self.tally.failures) < 10:
                    self.tally.failures.append({
                        "kind": kind, "path": path, "gateway": str(client.base_url),
                        "after_s": round((time.perf_counter_ns() - started) / 1e9, 3),
                        "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
                        "error": f"{type(exc).__name__}: {exc}"[:300]})  # fmt: skip
            return None
        elapsed = time.perf_counter_ns() - started
        code = _code(response)
        with self.tally.lock:
            self.tally.latency_ns[kind].append(elapsed)
            if response.is_success:
                self.tally.ok[kind] += 1
                return response
            if (response.status_code, code) in expected:
                self.tally.refused[kind][f"{response.status_code} {code}"] += 1
                return response
            self.tally.errors[kind][f"{response.status_code} {code}"] += 1
        return None

    def close(self) -> None:
        for client in self._clients.values():
            client.close()


def _code(response: httpx.Response) -> str:
    try:
        return response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return "-"


def receipt_of(tally: Tally, kind: str, response: httpx.Response) -> None:
    """A 200 query's receipt kept for the ledger check; a 200 without one is an error."""
    body = response.json()
    receipt = body.get("receipt") or {}
    if not isinstance(receipt.get("ledger_index"), int) or not receipt.get("leaf_hash"):
        tally.error(kind, "200 without a receipt")
        return
    with tally.lock:
        tally.receipts.append(
            Receipt(kind, receipt["ledger_index"], receipt["leaf_hash"],
                    int(body["cost"]["amount_minor"]))
        )  # fmt: skip


def ask(clients: Clients, kind: str, who: str, sql: str, expected: set, **extra: Any) -> int:
    """A query; its status (0 when it failed outright)."""
    response = clients.call(kind, who, "POST", "/v1/queries", expected, json={"sql": sql, **extra})
    if response is None:
        return 0
    if response.status_code == 200:
        receipt_of(clients.tally, kind, response)
    return response.status_code


def question(rng: random.Random, tally: Tally, family: str) -> tuple[str, str]:
    """A new question of `family` (tried a few times), else a repeated one; with its label."""
    if rng.random() < 0.5:
        for _ in range(5):
            sql = NEW[family](rng)
            if tally.fresh(sql):
                return f"{family} new", sql
    return f"{family} repeated", rng.choice(REPEATED[family])


def _band(rng: random.Random) -> tuple[int, int]:
    low = rng.randint(0, 70)
    return low, low + rng.randint(5, 40)


def _private(rng: random.Random) -> str:
    group = rng.choice(["district", "sex", "department"])
    low, high = _band(rng)
    return (f"SELECT {group}, COUNT(*) AS n FROM hospital.visits "
            f"WHERE age BETWEEN {low} AND {high} GROUP BY {group}")  # fmt: skip


def _thresholds(rng: random.Random) -> str:
    group = rng.choice(["district", "size"])
    low, high = _band(rng)
    return (f"SELECT {group}, COUNT(*) AS n, SUM(income) AS total FROM soak.households "
            f"WHERE age BETWEEN {low} AND {high} GROUP BY {group}")  # fmt: skip


def _paid(rng: random.Random) -> str:
    group = rng.choice(["plan", "status"])
    first = rng.randint(1, 11)
    last = rng.randint(first + 1, 12)
    return (f"SELECT {group}, COUNT(*) AS claims FROM insurance.claims "
            f"WHERE claim_month >= DATE '2024-{first:02d}-01' "
            f"AND claim_month < DATE '2024-{last:02d}-01' GROUP BY {group}")  # fmt: skip


NEW: dict[str, Callable[[random.Random], str]] = {
    "private": _private,
    "thresholds": _thresholds,
    "paid": _paid,
}
JOB = """
answer = sql("SELECT district, COUNT(*) AS n FROM hospital.visits WHERE age >= {age} "
             "GROUP BY district")
publish("by_district", [["district", "label"], ["n", "count"]], answer["rows"])
"""


def query_loop(clients: Clients, family: str, who: str, until: float, seed: int) -> None:
    rng = random.Random(seed)
    while time.monotonic() < until:
        kind, sql = question(rng, clients.tally, family)
        ask(clients, kind, who, sql, QUERY_REFUSALS)


def job_loop(clients: Clients, until: float, seed: int) -> None:
    """Submit a small job, follow it to its end, again."""
    rng = random.Random(seed)
    while time.monotonic() < until:
        code = JOB.format(age=rng.randint(0, 80))
        response = clients.call("job submit", "analyst", "POST", "/v1/jobs", JOB_REFUSALS,
                                json={"code": code})  # fmt: skip
        if response is None or response.status_code != 202:
            continue
        job_id = response.json()["id"]
        clients.tally.change("job_submitted", job_id)
        clients.tally.jobs[job_id] = follow_job(clients, job_id, time.monotonic() + 180)


def follow_job(clients: Clients, job_id: str, deadline: float) -> str:
    """Poll a job (from either gateway) until it ends or `deadline` passes; its last status."""
    status = "unknown"
    while time.monotonic() < deadline:
        shown = clients.call("job poll", "analyst", "GET", f"/v1/jobs/{job_id}")
        if shown is not None:
            status = shown.json()["status"]
            if status in ENDED:
                if status in JOB_ERRORS:
                    clients.tally.error("job run", status)
                return status
        time.sleep(0.1)
    return status


@dataclass
class Storm:
    """Grants of the storm developer: live ones for the query threads, and revocation times."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    recent: list[str] = field(default_factory=list)
    revoked_at: dict[str, float] = field(default_factory=dict)
    released_after_revocation: list[dict] = field(default_factory=list)
    cycles: int = 0

    def pick(self, rng: random.Random) -> str | None:
        with self.lock:
            return rng.choice(self.recent[-8:]) if self.recent else None


REVOKERS = ["city-hospital", "supervisor", "operator"]
# The party a principal approves for, as grant entries name it.
PARTY = {"supervisor": SUPERVISOR_PARTY}


def new_grant(clients: Clients, kind: str) -> str | None:
    """A grant the storm developer requests and both parties approve; its id, once active."""
    until = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {"assets": ["soak.households"], "purpose": "public_welfare",
            "scenario": "soak: grant churn", "methods": ["sql"], "valid_until": until}  # fmt: skip
    asked = clients.call(f"{kind} request", "stormer", "POST", "/v1/grants", json=body)
    if asked is None:
        return None
    grant_id = asked.json()["id"]
    clients.tally.change("grant_requested", grant_id)
    for party in ("city-hospital", "supervisor"):
        approved = clients.call(f"{kind} approve", party, "POST", f"/v1/grants/{grant_id}/approve")
        if approved is None:
            return None
        clients.tally.change("grant_approved", grant_id, PARTY.get(party, party))
    return grant_id


def revoke(clients: Clients, kind: str, grant_id: str, storm: Storm, rng: random.Random) -> None:
    revoked = clients.call(f"{kind} revoke", rng.choice(REVOKERS), "POST",
                           f"/v1/grants/{grant_id}/revoke", json={"reason": "soak"})  # fmt: skip
    if revoked is not None:
        with storm.lock:
            storm.revoked_at[grant_id] = time.monotonic()
            storm.cycles += 1
        clients.tally.change("grant_revoked", grant_id)


def under_grant(
    clients: Clients, kind: str, grant_id: str, storm: Storm, rng: random.Random
) -> None:
    """A query under `grant_id`; a 200 for a query sent after the revocation returned is an
    error (revocation takes effect at once, in every gateway process)."""
    sent = time.monotonic()
    sql = rng.choice(REPEATED["thresholds"])
    status = ask(clients, kind, "stormer", sql, UNDER_GRANT_REFUSALS, grant_id=grant_id)
    with storm.lock:
        revoked = storm.revoked_at.get(grant_id)
    if status == 200 and revoked is not None and sent > revoked:
        clients.tally.error(kind, "200 after revocation")
        with storm.lock:
            storm.released_after_revocation.append({"grant": grant_id, "late_by_s": sent - revoked})


def churn_loop(clients: Clients, storm: Storm, until: float, seed: int) -> None:
    """Steady grant churn: request, approve, three queries, revoke, one refused query."""
    rng = random.Random(seed)
    while time.monotonic() < until:
        grant_id = new_grant(clients, "churn grant")
        if grant_id is None:
            continue
        for _ in range(3):
            under_grant(clients, "churn query", grant_id, storm, rng)
        revoke(clients, "churn grant", grant_id, storm, rng)
        under_grant(clients, "churn query", grant_id, storm, rng)


def storm_revoker(clients: Clients, storm: Storm, until: float, seed: int) -> None:
    """Grants that live a fraction of a second while the storm's query threads use them."""
    rng = random.Random(seed)
    while time.monotonic() < until:
        grant_id = new_grant(clients, "storm grant")
        if grant_id is None:
            continue
        with storm.lock:
            storm.recent.append(grant_id)
        time.sleep(rng.uniform(0, 0.3))  # pacing, so the query threads reach the live grant
        revoke(clients, "storm grant", grant_id, storm, rng)


def storm_queries(clients: Clients, storm: Storm, until: float, seed: int) -> None:
    rng = random.Random(seed)
    while time.monotonic() < until:
        grant_id = storm.pick(rng)
        if grant_id is None:
            time.sleep(0.05)
            continue
        under_grant(clients, "storm query", grant_id, storm, rng)


# --- set-up, checks -----------------------------------------------------------------------


def households_csv(rows: int, rng: random.Random) -> bytes:
    lines = ["household,district,age,size,income"]
    for i in range(rows):
        lines.append(f"h{i:06d},{rng.choice(DISTRICTS)},{rng.randint(18, 95)},"
                     f"{rng.randint(1, 6)},{rng.randint(0, 400000)}")  # fmt: skip
    return ("\n".join(lines) + "\n").encode()


def set_up(clients: Clients, rng: random.Random) -> None:
    """The storm developer, the thresholds asset, and the analyst's grant on it."""
    made = clients.client("admin", 0).post(
        "/v1/principals", json={"id": "stormer", "roles": ["developer"], "org": "Soak Storm Lab"}
    )
    made.raise_for_status()
    clients.keys["stormer"] = made.json()["api_key"]
    registered = clients.client("city-hospital", 0).post(
        "/v1/assets",
        data={"card": json.dumps(HOUSEHOLDS)},
        files={"file": ("households.csv", io.BytesIO(households_csv(5000, rng)), "text/csv")},
    )
    if registered.status_code != 201:
        raise SystemExit(f"registering {HOUSEHOLDS['id']}: {registered.text}")
    until = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    asked = clients.client("analyst", 1).post("/v1/grants", json={
        "assets": ["soak.households"], "purpose": "public_welfare", "scenario": "soak",
        "methods": ["sql"], "valid_until": until})  # fmt: skip
    asked.raise_for_status()
    for party in ("city-hospital", "supervisor"):
        clients.client(party, 0).post(f"/v1/grants/{asked.json()['id']}/approve").raise_for_status()


def ledger_entries(client: httpx.Client) -> list[dict]:
    """Every entry as the supervisor reads it, page by page."""
    items: list[dict] = []
    while True:
        params = {"limit": 1000, **({"after": items[-1]["index"]} if items else {})}
        page = client.get("/v1/ledger/entries", params=params)
        page.raise_for_status()
        if not page.json()["items"]:
            return items
        items += page.json()["items"]


def check_ledger(items: list[dict], tally: Tally) -> dict:
    """Receipts against the ledger's entries; accepted changes against their entries."""
    by_index = {item["index"]: item for item in items}
    rehashed = sum(
        hashlib.sha256(b"\x00" + item["data"].encode()).hexdigest() != item["leaf_hash"]
        for item in items
    )
    missing = [r.index for r in tally.receipts if r.index not in by_index]
    mismatched = [
        r.index
        for r in tally.receipts
        if r.index in by_index and by_index[r.index]["leaf_hash"] != r.leaf_hash
    ]
    indices = [r.index for r in tally.receipts]
    recorded: set[tuple[str, str, str | None]] = set()
    types: Counter = Counter()
    for item in items:
        data = json.loads(item["data"])
        types[data.get("type", "?")] += 1
        subject = data.get("job_id") or data.get("grant")
        if isinstance(subject, dict):
            subject = subject.get("id")
        if subject:
            recorded.add((data.get("type"), subject, data.get("party")))
    lost_changes = [change for change in tally.changes if change not in recorded]
    queries = [json.loads(item["data"]) for item in items]
    queries = [d for d in queries if d.get("type") == "query" and "job_id" not in d]
    summarised = sum(
        row["refusals"]
        for d in (json.loads(item["data"]) for item in items)
        if d.get("type") == "refusals_summarised"
        for row in d["counts"]
        if row["record"] == "query"
    )
    return {
        "entries": len(items),
        "entry_types": dict(types.most_common()),
        "contiguous": sorted(by_index) == list(range(len(items))),
        "leaf_hashes_not_matching_data": rehashed,
        "receipts": len(tally.receipts),
        "receipts_missing": len(missing),
        "receipts_mismatched": len(mismatched),
        "receipts_sharing_an_index": len(indices) - len(set(indices)),
        # Refusals past a principal's rate are counted into a summary at its window's end,
        # so a window still open at the end can leave the ledger's count behind.
        "query_entries": {
            "released": sum(d["outcome"] == "released" for d in queries),
            "refused": sum(d["outcome"] != "released" for d in queries),
            "refused_in_summaries": summarised,
        },
        "query_responses": {"released": len(tally.receipts), "refused": recorded_refusals(tally)},
        "accepted_changes": len(tally.changes),
        "accepted_changes_without_entry": len(lost_changes),
        "examples": {
            "missing": missing[:5],
            "mismatched": mismatched[:5],
            "changes": [list(change) for change in lost_changes[:5]],
        },  # fmt: skip
    }


def recorded_refusals(tally: Tally) -> int:
    """Query refusals received that the ledger records (a full queue's 429 is not)."""
    return sum(
        n
        for kind, counts in tally.refused.items()
        if "query" in kind or kind.split()[0] in NEW
        for code, n in counts.items()
        if code != "429 RATE_LIMITED"
    )


def worker_restarts(gateway: Gateway, token: str) -> dict[str, float]:
    """Enclave workers each gateway took out of service, by reason, from its /metrics."""
    text = httpx.get(f"{gateway.url}/metrics", headers={"Authorization": f"Bearer {token}"},
                     timeout=30).text  # fmt: skip
    pattern = r'^veil_enclave_worker_restarts_total\{reason="([a-z_]+)"\} (\S+)$'
    return {reason: float(n) for reason, n in re.findall(pattern, text, re.M)}


def check_settlement(client: httpx.Client, months: list[str], tally: Tally) -> dict:
    charged = sum(r.amount_minor for r in tally.receipts)
    total, developers = 0, Counter()
    for period in months:
        shown = client.get("/v1/settlements", params={"period": period})
        shown.raise_for_status()
        total += shown.json()["total_charged_minor"]
        developers.update(shown.json()["developers"])
    received = Counter()
    for r in tally.receipts:
        received[r.kind.split()[0]] += r.amount_minor
    return {
        "periods": months,
        "settlement_total_minor": total,
        "charges_received_minor": charged,
        "equal": total == charged,
        "settlement_by_developer": dict(developers),
        "received_by_kind": dict(received),
    }


def check_jobs(clients: Clients) -> dict:
    """Every job followed to its end; none anywhere left queued or running."""
    tally = clients.tally
    for job_id, status in list(tally.jobs.items()):
        if status not in ENDED:
            tally.jobs[job_id] = follow_job(clients, job_id, time.monotonic() + 120)
    supervisor = clients.client("supervisor", 0)
    stuck = {
        status: len(supervisor.get("/v1/jobs", params={"status": status}).json()["items"])
        for status in ("queued", "running")
    }
    statuses = Counter(tally.jobs.values())
    return {
        "submitted": len(tally.jobs),
        "statuses": dict(statuses),
        "not_ended": sum(n for status, n in statuses.items() if status not in ENDED),
        "queued_or_running_at_end": stuck,
    }


def verify(home: Path, env: dict[str, str]) -> dict:
    started = time.monotonic()
    done = subprocess.run([*VEIL, "ledger", "verify", "--home", str(home)], cwd=ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True)  # fmt: skip
    return {
        "exit_code": done.returncode,
        "seconds": round(time.monotonic() - started, 2),
        "output": (done.stdout.strip() or done.stderr.strip())[-500:],
    }


def months_between(start: datetime, end: datetime) -> list[str]:
    months = {start.strftime("%Y-%m"), end.strftime("%Y-%m")}
    return sorted(months)


# --- the run ------------------------------------------------------------------------------


def traffic(clients: Clients, duration: float, seed: int) -> tuple[Storm, dict]:
    """All the client threads for `duration` seconds, the storm in the middle fifth."""
    storm = Storm()
    now = time.monotonic()
    until = now + duration
    storm_from, storm_until = now + 0.4 * duration, now + 0.6 * duration
    steady: list[tuple[Callable, tuple]] = [
        (query_loop, (clients, "private", "analyst", until)),
        (query_loop, (clients, "private", "analyst", until)),
        (query_loop, (clients, "thresholds", "analyst", until)),
        (query_loop, (clients, "paid", "fintech", until)),
        (job_loop, (clients, until)),
        (job_loop, (clients, until)),
        (churn_loop, (clients, storm, until)),
    ]
    threads = [
        threading.Thread(target=target, args=(*args, seed + i), daemon=True)
        for i, (target, args) in enumerate(steady)
    ]
    for thread in threads:
        thread.start()
    time.sleep(max(0.0, storm_from - time.monotonic()))
    stormers = [
        threading.Thread(target=target, args=(clients, storm, storm_until, seed + 100 + i),
                         daemon=True)
        for i, target in enumerate([storm_revoker, storm_revoker, storm_queries, storm_queries,
                                    storm_queries])
    ]  # fmt: skip
    for thread in stormers:
        thread.start()
    for thread in [*stormers, *threads]:
        thread.join()
    phases = {"storm_from_s": round(0.4 * duration, 1), "storm_until_s": round(0.6 * duration, 1)}
    return storm, phases


def traffic_report(tally: Tally, seconds: float) -> dict:
    kinds = sorted(set(tally.requests) | set(tally.errors))
    return {
        kind: {
            "requests": tally.requests[kind],
            "per_s": round(tally.requests[kind] / seconds, 2),
            "ok": tally.ok[kind],
            "refused": dict(tally.refused[kind]),
            "errors": dict(tally.errors[kind]),
            "latency": summarise(tally.latency_ns[kind]) if tally.latency_ns[kind] else None,
        }
        for kind in kinds
    }


@contextmanager
def policy_engine(engine: str, policy: Path) -> Iterator[tuple[dict[str, str], list[Gateway]]]:
    """The gateways' policy settings, and for `opa` one OPA server (found on PATH) both ask,
    loading the shipped modules and the soak's; yields the settings and the OPA process."""
    if engine == "embedded":
        yield {"VEIL_POLICY_DIR": str(policy)}, []
        return
    binary = shutil.which("opa")
    if binary is None:
        raise SystemExit("no opa binary on PATH (make test puts one in ~/.cache/veil/bin)")
    shipped = [str(p) for p in sorted((ROOT / "policies").glob("*.rego"))
               if not p.name.endswith("_test.rego")]  # fmt: skip
    port = free_port()
    log = policy / "opa.log"
    process = subprocess.Popen(
        [binary, "run", "--server", "--addr", f"127.0.0.1:{port}", *shipped,
         str(policy / "soak.rego")],
        stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    opa = Gateway("opa", f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{opa.url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SystemExit(f"OPA did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.1)
        yield {"VEIL_POLICY_ENGINE": "opa", "VEIL_OPA_URL": opa.url}, [opa]
    finally:
        stop_gateway(opa)


def soak(args: argparse.Namespace, database_url: str, folder: Path) -> dict:
    home = folder / "home"
    policy = folder / "policy"
    policy.mkdir()
    (policy / "soak.rego").write_text(OPERATOR_MODULE)
    with policy_engine(args.policy_engine, policy) as (settings, sidecars):
        env = {"VEIL_DATABASE_URL": database_url, **settings}
        return run_gateways(args, home, env, sidecars)


def run_gateways(
    args: argparse.Namespace, home: Path, env: dict[str, str], sidecars: list[Gateway]
) -> dict:
    first = start_gateway("gateway-1 (demo)", "demo", home, env)
    gateways = [first]
    try:
        gateways.append(start_gateway("gateway-2 (serve)", "serve", home, env))
        keys = json.loads((home / "demo-credentials.json").read_text())
        clients = Clients(gateways, keys, Tally())
        set_up(clients, random.Random(args.seed))
        sampler = MemorySampler([*gateways, *sidecars], args.sample_s)
        sampling = threading.Thread(target=sampler.run, daemon=True)
        began = datetime.now(UTC)
        sampling.start()
        storm, phases = traffic(clients, args.duration, args.seed)
        seconds = time.monotonic() - sampler.started
        jobs = check_jobs(clients)
        sampler.stop.set()
        sampling.join()
        sampler.sample()
        token = (home / "keys" / "metrics.token").read_text().strip()
        restarts = {gateway.name: worker_restarts(gateway, token) for gateway in gateways}
        supervisor = clients.client("supervisor", 0)
        ledger = check_ledger(ledger_entries(supervisor), clients.tally)
        settlement = check_settlement(
            supervisor, months_between(began, datetime.now(UTC)), clients.tally
        )
        clients.close()
    finally:
        exits = {gateway.name: stop_gateway(gateway) for gateway in gateways}
    tally = clients.tally
    memory = sampler.report(args.duration, worker_lifetime_s(), args.peak_tolerance_mb)
    errors = {kind: dict(counts) for kind, counts in tally.errors.items() if counts}
    return {
        "traffic_seconds": round(seconds, 1),
        "phases": phases,
        "traffic": traffic_report(tally, seconds),
        "error_total": sum(sum(counts.values()) for counts in tally.errors.values()),
        "errors": errors,
        "connection_failures": tally.failures,
        "storm": {
            "grant_cycles": storm.cycles,
            "grants_in_storm": len(storm.recent),
            "released_after_revocation": storm.released_after_revocation[:10],
        },
        "jobs": jobs,
        "memory": memory,
        "enclave_worker_restarts": restarts,
        "ledger": ledger,
        "settlement": settlement,
        "verify": verify(home, env),
        "gateway_exit_codes": exits,
        "gateway_log_errors": {gateway.name: log_errors(gateway) for gateway in gateways},
    }


def flat(memory: list[dict], limit: float) -> bool:
    """Every main process (gateways, OPA) and each gateway's enclave workers together are
    bounded (`bounded`)."""
    return all(bounded(row, limit) for row in memory if row["process"] in JUDGED)


def worker_lifetime_s() -> float:
    """How long the gateways keep an enclave worker: `VEIL_WORKER_LIFETIME_S`, or its default."""
    return Settings().worker_lifetime_s


def verdict(report: dict) -> dict[str, bool]:
    ledger, jobs = report["ledger"], report["jobs"]
    return {
        "flat_memory": flat(report["memory"], report["flat_mb_per_min"]),
        "zero_errors": report["error_total"] == 0,
        "zero_lost_entries": ledger["receipts_missing"] == 0
        and ledger["receipts_mismatched"] == 0
        and ledger["receipts_sharing_an_index"] == 0
        and ledger["accepted_changes_without_entry"] == 0
        and ledger["leaf_hashes_not_matching_data"] == 0
        and ledger["contiguous"],
        "settlement_equals_charges": report["settlement"]["equal"],
        "every_job_ended": jobs["not_ended"] == 0
        and not any(jobs["queued_or_running_at_end"].values()),
        "ledger_verifies": report["verify"]["exit_code"] == 0,
    }


def print_report(report: dict) -> None:
    print(f"{'kind':<22} {'requests':>8} {'/s':>6} {'ok':>7} {'p50':>8} {'p99':>8}  "
          "refused; errors")  # fmt: skip
    for kind, row in report["traffic"].items():
        latency = row["latency"] or {"p50_ms": 0, "p99_ms": 0}
        refused = ", ".join(f"{code} ×{n}" for code, n in row["refused"].items()) or "-"
        errors = ", ".join(f"{code} ×{n}" for code, n in row["errors"].items()) or "-"
        print(f"{kind:<22} {row['requests']:>8} {row['per_s']:>6.2f} {row['ok']:>7} "
              f"{latency['p50_ms']:>6.1f}ms {latency['p99_ms']:>6.0f}ms  "
              f"{refused}; {errors}")  # fmt: skip
    print(f"\n{'process':<36} {'start':>6} {'end':>6} {'max':>6} {'peaks mid→last':>18} "
          f"{'2nd half':>10} {'last third':>10} {'periods':>10}  bounded")  # fmt: skip
    limit = report["flat_mb_per_min"]
    for row in report["memory"]:
        name = f"{row['gateway']} {row['process']}"
        if "start_mb" not in row:
            print(f"{name:<36} {row['processes_seen']} seen, largest {row['largest_one_mb']:.0f}MB")
            continue
        peaks = (
            f"{row['peak_middle_third_mb']:.0f}→{row['peak_last_third_mb']:.0f} "
            f"({row['peak_rise_mb']:+.0f})"
            if row["peak_rise_mb"] is not None
            else "-"
        )
        extra = (f"  ({row['processes_seen']} processes over the run, live {row['live']})"
                 if "live" in row else "")  # fmt: skip
        judged = ("yes" if bounded(row, limit) else "NO") if row["process"] in JUDGED else ""
        print(f"{name:<36} {row['start_mb']:>4.0f}MB {row['end_mb']:>4.0f}MB "
              f"{row['max_mb']:>4.0f}MB {peaks:>18} "
              f"{per_min(row['second_half_slope_mb_per_min']):>10} "
              f"{per_min(row['last_third_slope_mb_per_min']):>10} "
              f"{per_min(row['whole_period_trend_mb_per_min']):>10}  {judged}{extra}")  # fmt: skip
    print(f"bounded: the last third's peak at most {report['peak_tolerance_mb']} MB above the "
          f"middle third's (3-sample running median), and the slope at most {limit} MB/min: "
          f"for enclave workers the trend over whole recycle periods "
          f"({report['worker_lifetime_s']:.0f} s) where the run has one after its first "
          f"third, else the last third's")  # fmt: skip
    lifetime = report["worker_lifetime_s"]
    if any(row["process"] == "enclave workers" and row["whole_period_trend_mb_per_min"] is None
           for row in report["memory"]):  # fmt: skip
        print(f"enclave workers not judged over whole recycle periods: that takes --duration "
              f"{1.5 * lifetime:.0f} or more at a {lifetime:.0f}-s lifetime")  # fmt: skip
    ledger, settlement = report["ledger"], report["settlement"]
    print(f"\nledger: {ledger['entries']} entries; receipts {ledger['receipts']} "
          f"(missing {ledger['receipts_missing']}, mismatched {ledger['receipts_mismatched']}); "
          f"accepted changes {ledger['accepted_changes']} "
          f"(without entry {ledger['accepted_changes_without_entry']})")  # fmt: skip
    entries, responses = ledger["query_entries"], ledger["query_responses"]
    print(f"query entries released {entries['released']} / answers {responses['released']}; "
          f"refused {entries['refused']} + {entries['refused_in_summaries']} summarised / "
          f"refusals received {responses['refused']}")  # fmt: skip
    print(f"enclave worker restarts: {report['enclave_worker_restarts']}")
    print(f"settlement {settlement['settlement_total_minor']} = charges received "
          f"{settlement['charges_received_minor']}: {settlement['equal']}")  # fmt: skip
    print(f"jobs: {report['jobs']['statuses']}; storm: {report['storm']['grant_cycles']} grant "
          f"cycles; verify exit {report['verify']['exit_code']} "
          f"({report['verify']['seconds']} s)")  # fmt: skip
    print("verdict: " + ", ".join(f"{name} {'yes' if ok else 'NO'}"
                                  for name, ok in report["verdict"].items()))  # fmt: skip


def per_min(slope: float | None) -> str:
    return "-" if slope is None else f"{slope:+.2f}/min"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600)
    parser.add_argument("--database-url", help="an empty PostgreSQL database (SQLAlchemy URL)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--sample-s", type=float, default=5.0, help="seconds between RSS samples")
    parser.add_argument("--seed", type=int, default=24)
    parser.add_argument("--flat-mb-per-min", type=float, default=2.0,
                        help="the slope still called flat (see `judge`)")  # fmt: skip
    parser.add_argument("--peak-tolerance-mb", type=float, default=5.0,
                        help="MB the last third's peak may pass the middle third's")  # fmt: skip
    parser.add_argument("--policy-engine", choices=["embedded", "opa"], default="embedded",
                        help="embedded, or one OPA server (`opa` on PATH) for both")  # fmt: skip
    args = parser.parse_args()
    started = time.monotonic()
    where = machine()  # the load average as the run starts
    with tempfile.TemporaryDirectory(prefix="veil-soak.") as folder:
        if args.database_url:
            report = soak(args, args.database_url, Path(folder))
            server = "given by --database-url"
        else:
            with postgres() as (url, server):
                report = soak(args, url, Path(folder))
    report = {
        "command": ("python bench/soak.py " + " ".join(sys.argv[1:])).strip(),
        "machine": where,
        "git": git_state(),
        "postgres": server,
        "httpx": version("httpx"),
        "duration_s": args.duration,
        "policy_engine": args.policy_engine,
        "flat_mb_per_min": args.flat_mb_per_min,
        "peak_tolerance_mb": args.peak_tolerance_mb,
        "worker_lifetime_s": worker_lifetime_s(),
        "client_keepalive_expiry_s": KEEPALIVE_EXPIRY_S,
        "wall_seconds": round(time.monotonic() - started, 1),
        **report,
    }
    report["verdict"] = verdict(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print_report(report)
    print(f"written to {args.out}")
    if not all(report["verdict"].values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()

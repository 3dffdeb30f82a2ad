"""Policy decision latency: both engines, called directly and behind the gateway.

Run: .venv/bin/python bench/policy_latency.py [--repeat N] [--http-repeat N]
Prints a table and writes bench/results/policy_latency.json.

Direct series call `decide(input)` in this process: the embedded engine (regopy), and the OPA
engine against a real `opa run --server` on loopback. Every call carries its own `now`, so no
call is answered from the embedded engine's cache of decisions by exact input. Inputs are
`query:run` requests from a developer owning 1 or 20 grants, one allowed (the last grant
covers it) and one denied (no grant covers the asset, so the policy also explains the denial
grant by grant).

Gateway series time HTTP requests to a real `veil demo` server on loopback: `GET /healthz`
(no authentication, no decision) as the floor, and `GET /v1/assets/hospital.visits` with the
analyst's key, whose work beyond the floor is authentication, one card read and its policy
decision (scope `catalog:read`, where the route makes one). The two are interleaved request by
request so both see the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# DuckDB must be loaded before regopy (imported by policies): the other order aborts the process.
import duckdb  # noqa: F401
from environment import git_state, machine, version
from figures import summarise

from policies import Decision, EmbeddedEngine, OpaEngine

ROOT = Path(__file__).resolve().parent.parent
OPA_CACHE = Path.home() / ".cache" / "veil" / "bin"
RESULTS = ROOT / "bench" / "results" / "policy_latency.json"
GRANT_COUNTS = (1, 20)
NOW = "2026-06-01T12:00:00Z"
ASSET = "hospital.visits"
ASSET_PATH = f"/v1/assets/{ASSET}"

# tests/ is not an installed package; its support module starts the real servers.
sys.path.insert(0, str(ROOT))
from tests.support import Opa, Server, start_opa, start_server, stop_server  # noqa: E402

# --- inputs -----------------------------------------------------------------------------------


def _asset(asset_id: str, provider: str) -> dict[str, Any]:
    return {
        "id": asset_id,
        "classification": "L3",
        "provider": provider,
        "domain": "health",
        "status": "active",
    }


def _grant(index: int, asset_id: str) -> dict[str, Any]:
    return {
        "id": f"g_bench_{index:03d}",
        "developer": "bench-dev",
        "assets": [asset_id],
        "columns": None,
        "purpose": "research",
        "scenario": "policy latency benchmark",
        "methods": ["sql"],
        "valid_from": "2026-01-01T00:00:00Z",
        "valid_until": "2027-01-01T00:00:00Z",
        "status": "active",
    }


def query_input(grants: int, allowed: bool) -> dict[str, Any]:
    """A `query:run` input shaped like the gateway's; only the last grant covers ASSET.

    The denied request asks for an asset none of the grants covers (`asset_not_granted`).
    """
    owned = [_grant(i, f"other.asset_{i:03d}") for i in range(1, grants)]
    owned.append(_grant(grants, ASSET))
    requested = ASSET if allowed else "insurance.claims"
    columns = ["district", "patient_id", "cost"] if allowed else ["plan", "paid_amount"]
    return {
        "scope": "query:run",
        "principal": {
            "id": "bench-dev",
            "roles": ["developer"],
            "org": "bench",
            "status": "active",
        },
        "resource": {
            "assets": [_asset(requested, "city-hospital" if allowed else "insurer")],
            "columns": {requested: columns},
        },
        "request": {"method": "sql", "purpose": None, "grant_id": None},
        "grants": owned,
        "now": NOW,
    }


CASES = {
    f"{'allow' if allowed else 'deny'}, {n} grant{'s' * (n > 1)}": query_input(n, allowed)
    for allowed in (True, False)
    for n in GRANT_COUNTS
}

# --- statistics and machine -------------------------------------------------------------------


def _opa_version() -> dict[str, str]:
    binary = shutil.which("opa")
    if binary is None:
        return {}
    text = subprocess.run([binary, "version"], capture_output=True, text=True, check=True).stdout
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {"binary": binary, **{k.strip(): v.strip() for k, v in fields.items() if v.strip()}}


def versions() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "regopy": version("regopy"),
        "opa": _opa_version(),
        "opa-python-client": version("opa-python-client"),
        "duckdb": version("duckdb"),
        "httpx": version("httpx"),
        "fastapi": version("fastapi"),
        "uvicorn": version("uvicorn"),
    }


# --- timing -----------------------------------------------------------------------------------


def time_calls(call: Callable[[], object], repeat: int, warmup: int) -> list[int]:
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter_ns()
        call()
        samples.append(time.perf_counter_ns() - started)
    return samples


def _outcome(decision: Decision) -> str:
    return "allow" if decision.allow else "deny: " + ",".join(decision.reasons)


def direct(engine: EmbeddedEngine | OpaEngine, repeat: int) -> dict[str, dict[str, Any]]:
    """Each call a second later than the one before, as live requests are: the embedded
    engine's cache of decisions by exact input never answers, so every call evaluates."""
    figures = {}
    for case, payload in CASES.items():
        outcome = _outcome(engine.decide(payload))
        warmup = min(50, repeat)
        inputs = iter([{**payload, "now": _seconds_after(NOW, i)} for i in range(warmup + repeat)])
        samples = time_calls(lambda i=inputs: engine.decide(next(i)), repeat, warmup=warmup)
        figures[case] = {"outcome": outcome, **summarise(samples)}
    return figures


def _seconds_after(stamp: str, seconds: int) -> str:
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00")) + timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def gateway(server: Server, repeat: int) -> dict[str, Any]:
    """GET /healthz and GET the asset card, interleaved, on one keep-alive connection."""
    paths = {"healthz": "/healthz", "asset": ASSET_PATH}
    samples: dict[str, list[int]] = {name: [] for name in paths}
    statuses: dict[str, Counter[int]] = {name: Counter() for name in paths}
    with server.client("analyst") as client:
        for _ in range(min(20, repeat)):
            for path in paths.values():
                client.get(path)
        for _ in range(repeat):
            for name, path in paths.items():
                started = time.perf_counter_ns()
                response = client.get(path)
                samples[name].append(time.perf_counter_ns() - started)
                statuses[name][response.status_code] += 1
    figures: dict[str, Any] = {
        name: {
            "request": f"GET {path}",
            "status_counts": {str(code): n for code, n in sorted(statuses[name].items())},
            **summarise(samples[name]),
        }
        for name, path in paths.items()
    }
    figures["asset_minus_healthz"] = {
        key: round(figures["asset"][key] - figures["healthz"][key], 3)
        for key in ("p50_ms", "p95_ms", "p99_ms")
    }
    return figures


def run_gateway(home: Path, repeat: int, env: dict[str, str] | None = None) -> dict[str, Any]:
    try:
        server = start_server(home, env=env)
    except RuntimeError:
        log = home.parent / f"{home.name}-server.log"
        if log.exists():
            print(log.read_text()[-4000:], file=sys.stderr)
        raise
    try:
        return gateway(server, repeat)
    finally:
        stop_server(server)


# --- report -----------------------------------------------------------------------------------


def _row(series: str, case: str, outcome: str, figures: dict[str, Any]) -> str:
    cells = "".join(f"{figures[k]:>9.3f}" for k in ("p50_ms", "p95_ms", "p99_ms", "min_ms"))
    return (
        f"{series:<18} {case:<18} {outcome:<24}{cells}{figures['max_ms']:>9.3f}{figures['runs']:>6}"
    )


def print_table(report: dict[str, Any]) -> None:
    header = (
        f"{'series':<18} {'case':<18} {'outcome / status':<24}"
        + "".join(f"{h:>9}" for h in ("p50 ms", "p95 ms", "p99 ms", "min ms", "max ms"))
        + f"{'runs':>6}"
    )
    print(header)
    print("-" * len(header))
    for engine, cases in report["direct"].items():
        for case, figures in cases.items():
            print(_row(f"direct {engine}", case, figures["outcome"], figures))
    for engine, series in report["gateway"].items():
        for name in ("healthz", "asset"):
            figures = series[name]
            status = " ".join(f"{c}x{n}" for c, n in figures["status_counts"].items())
            label = "GET /healthz" if name == "healthz" else "GET asset card"
            print(_row(f"gateway+{engine}", label, status, figures))
        diff = series["asset_minus_healthz"]
        print(
            f"{f'gateway+{engine}':<18} {'asset - healthz':<18} {'':<24}"
            f"{diff['p50_ms']:>9.3f}{diff['p95_ms']:>9.3f}{diff['p99_ms']:>9.3f}"
        )
    for engine, series in report["gateway"].items():
        for name in ("healthz", "asset"):
            bad = {c: n for c, n in series[name]["status_counts"].items() if c != "200"}
            if bad:
                print(f"WARNING gateway+{engine} {series[name]['request']}: non-200 {bad}")
    for engine, cases in report["direct"].items():
        for case, figures in cases.items():
            if case.startswith("allow") != (figures["outcome"] == "allow"):
                print(f"WARNING direct {engine} '{case}' decided {figures['outcome']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeat", type=int, help="timed runs per series (default 500 direct, 200 HTTP)"
    )
    parser.add_argument("--http-repeat", type=int, help="timed requests per HTTP series")
    args = parser.parse_args()
    repeat = args.repeat or 500
    http_repeat = args.http_repeat or args.repeat or 200
    if shutil.which("opa") is None and (OPA_CACHE / "opa").exists():
        os.environ["PATH"] = f"{OPA_CACHE}{os.pathsep}{os.environ.get('PATH', '')}"

    report: dict[str, Any] = {
        "command": " ".join(["python", "bench/policy_latency.py", *sys.argv[1:]]),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        "git": git_state(),
        "notes": [
            "p50 is the median; p95 and p99 are nearest-rank; all times in milliseconds",
            "direct: one decide(input) call in process, including input serialisation and "
            "decision parsing; OPA over a keep-alive loopback connection",
            "gateway: client-side wall time of one HTTP/1.1 request over a keep-alive loopback "
            "connection to `veil demo`; asset - healthz is the difference of the percentiles",
        ],
        "repeat": {"direct": repeat, "http": http_repeat},
        "direct": {},
        "gateway": {},
    }
    opa: Opa | None = None
    try:
        report["direct"]["embedded"] = direct(EmbeddedEngine(), repeat)
        opa = start_opa()
        report["direct"]["opa"] = direct(OpaEngine(opa.url), repeat)
        with tempfile.TemporaryDirectory(prefix="veil-bench-") as folder:
            report["gateway"]["embedded"] = run_gateway(Path(folder) / "embedded", http_repeat)
            report["gateway"]["opa"] = run_gateway(
                Path(folder) / "opa",
                http_repeat,
                env={"VEIL_POLICY_ENGINE": "opa", "VEIL_OPA_URL": opa.url},
            )
    finally:
        if opa is not None:
            opa.stop()

    print_table(report)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

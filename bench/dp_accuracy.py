"""Accuracy and time per query at equal ε: Veil's DP SQL over HTTP next to SmartNoise SQL.

Run: .venv/bin/python bench/dp_accuracy.py [--runs N] [--persons N]
The same data (one row per person), the same queries and the same ε per query (1.0, as
Veil ships) through both. SmartNoise SQL pins an older OpenDP than Veil, so it runs in a venv
of its own, made on first use in ~/.cache/veil/smartnoise-venv. Neither side is given a
public domain: both select groups with noise. Each run asks a new question (an always-true
filter changes), so Veil answers afresh instead of from its store. Prints a table and writes
bench/results/dp_accuracy.json.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from demo_server import demo_server
from environment import git_state, machine

ROOT = Path(__file__).resolve().parent.parent
VENV = Path.home() / ".cache" / "veil" / "smartnoise-venv"
SMARTNOISE = "smartnoise-sql==1.0.10"
DISTRICTS = ["north", "south", "east", "west"]
BOUNDS = (0, 200_000)
EPSILON, DELTA = 1.0, 1e-7
ALWAYS = "WHERE age >= -{run}"
QUERIES = {
    "count": f"SELECT COUNT(*) AS n FROM bench.people {ALWAYS}",
    "count_by_district": f"SELECT district, COUNT(*) AS n FROM bench.people {ALWAYS} "
    "GROUP BY district",
    "sum_by_district": f"SELECT district, SUM(income) AS s FROM bench.people {ALWAYS} "
    "GROUP BY district",
    "avg_by_district": f"SELECT district, AVG(income) AS m FROM bench.people {ALWAYS} "
    "GROUP BY district",
    "count_by_age": f"SELECT age, COUNT(*) AS n FROM bench.people {ALWAYS} GROUP BY age",
}
CARD = {
    "id": "bench.people",
    "title": "People (benchmark)",
    "provider": "city-hospital",
    "classification": "L2",
    "domain": "civil",
    "rights": {"holder": "city-hospital", "personal_data": True},
    "columns": [
        {"name": "person", "type": "VARCHAR", "role": "privacy_unit"},
        {"name": "district", "type": "VARCHAR", "role": "dimension"},
        {"name": "age", "type": "INTEGER", "role": "dimension"},
        {"name": "income", "type": "INTEGER", "role": "measure", "bounds": list(BOUNDS)},
    ],
    "revenue_shares_bp": {"city-hospital": 10000},
}


def people(count: int) -> list[dict]:
    return [
        {"person": f"p{i}", "district": DISTRICTS[i % 4], "age": 20 + (i * 7) % 60,
         "income": 10_000 + (i * 7919) % 120_000}
        for i in range(count)
    ]  # fmt: skip


def truths(rows: list[dict]) -> dict[str, dict]:
    """Each query's exact answer, by group key ("" for no group)."""
    by: dict[str, dict] = {name: {} for name in QUERIES}
    by["count"][""] = len(rows)
    for row in rows:
        district, age = row["district"], str(row["age"])
        for name, key, value in (
            ("count_by_district", district, 1),
            ("sum_by_district", district, row["income"]),
            ("count_by_age", age, 1),
        ):
            by[name][key] = by[name].get(key, 0) + value
    by["avg_by_district"] = {
        d: by["sum_by_district"][d] / by["count_by_district"][d] for d in DISTRICTS
    }
    return by


def relative_errors(answers: list[list[list]], truth: dict) -> list[float]:
    """Per run and true group: |released - true| / true; a group not released counts as 1."""
    errors = []
    for rows in answers:
        released = {("" if len(r) == 1 else str(r[0])): r[-1] for r in rows}
        for key, true in truth.items():
            value = released.get(key)
            errors.append(1.0 if value is None else abs(value - true) / abs(true))
    return errors


def veil_side(rows: list[dict], runs: int) -> dict[str, dict]:
    # The bench's operator module gives the server wide budgets.
    with tempfile.TemporaryDirectory() as folder, demo_server(Path(folder) / "home") as served:
        url, keys = served
        _register(url, keys, rows)
        results = {}
        with httpx.Client(base_url=url, timeout=120) as client:
            client.headers["Authorization"] = f"Bearer {keys['analyst']}"
            for name, sql in QUERIES.items():
                answers, seconds = [], []
                for run in range(runs):
                    started = time.perf_counter()
                    answer = client.post("/v1/queries", json={"sql": sql.format(run=run)})
                    seconds.append(time.perf_counter() - started)
                    assert answer.status_code == 200, answer.text
                    answers.append(answer.json()["rows"])
                results[name] = {"answers": answers, "seconds": seconds}
    return results


def _register(url: str, keys: dict[str, str], rows: list[dict]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)

    def as_(who: str) -> httpx.Client:
        return httpx.Client(
            base_url=url, timeout=120, headers={"Authorization": f"Bearer {keys[who]}"}
        )

    with as_("city-hospital") as provider:
        provider.post(
            "/v1/assets",
            data={"card": json.dumps(CARD)},
            files={"file": ("people.csv", text.getvalue().encode(), "text/csv")},
        ).raise_for_status()
    with as_("analyst") as analyst:
        asked = analyst.post(
            "/v1/grants",
            json={"assets": [CARD["id"]], "purpose": "public_welfare", "scenario": "bench",
                  "methods": ["sql"], "valid_until": "2030-01-01T00:00:00Z"},
        )  # fmt: skip
        asked.raise_for_status()
    for party in ("city-hospital", "supervisor"):
        with as_(party) as approver:
            approver.post(f"/v1/grants/{asked.json()['id']}/approve").raise_for_status()


def smartnoise_side(rows: list[dict], runs: int) -> dict[str, dict]:
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", SMARTNOISE], check=True)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "people.csv"
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        job = {"csv": str(path), "queries": QUERIES, "runs": runs, "epsilon": EPSILON,
               "delta": DELTA, "bounds": list(BOUNDS)}  # fmt: skip
        done = subprocess.run(
            [str(python), str(ROOT / "bench" / "smartnoise_side.py")],
            input=json.dumps(job), capture_output=True, text=True, check=True,
        )  # fmt: skip
    return json.loads(done.stdout)


def version_in_venv(package: str) -> str:
    done = subprocess.run(
        [str(VENV / "bin" / "python"), "-c",
         f"import importlib.metadata as m; print(m.version({package!r}))"],
        capture_output=True, text=True,
    )  # fmt: skip
    return done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--persons", type=int, default=20_000)
    args = parser.parse_args()
    rows = people(args.persons)
    truth = truths(rows)
    sides = {"veil": veil_side(rows, args.runs), "smartnoise": smartnoise_side(rows, args.runs)}
    table = {}
    for name in QUERIES:
        table[name] = {
            side: {
                "median_relative_error": statistics.median(
                    relative_errors(results[name]["answers"], truth[name])
                ),
                "median_seconds": statistics.median(results[name]["seconds"]),
            }
            for side, results in sides.items()
        }
    print(f"{'query':<20} {'Veil error':>11} {'SmartNoise':>11} {'Veil s':>8} {'SN s':>8}")
    for name, row in table.items():
        veil, sn = row["veil"], row["smartnoise"]
        print(
            f"{name:<20} {veil['median_relative_error']:>11.5f} "
            f"{sn['median_relative_error']:>11.5f} {veil['median_seconds']:>8.3f} "
            f"{sn['median_seconds']:>8.3f}"
        )
    report = {
        "what": "median relative error and seconds per query at epsilon 1.0 per query",
        "persons": args.persons,
        "runs": args.runs,
        "epsilon": EPSILON,
        "delta": DELTA,
        "queries": QUERIES,
        "results": table,
        "smartnoise_sql": version_in_venv("smartnoise-sql"),
        "machine": machine(),
        "git": git_state(),
    }
    out = ROOT / "bench" / "results" / "dp_accuracy.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

"""Output gate cost: the disclosure gate's time on large shapes, before and after its index.

Run: .venv/bin/python bench/gate_cost.py [--before REV] [--before-cap-s S]
Prints a table and writes bench/results/gate_cost.json.

"before" is the gate as it was at REV (read from git), which checks every published row against
every answer row; "after" is the gate in the working tree. Each shape is n answers of r rows
(two label columns, a count and a mean) against t tables of p rows built from those answers.
The row-by-row gate is only run where its predicted time (published rows x answer rows, at the
rate measured on the smallest shape) is under the cap; above it the figure is that prediction,
marked estimated. "pairs" is a shape made to defeat the index (every pair of two label sets is
an answer row, and each lookup walks a common label's rows): the gate refuses it (gate_limit)
once its budget is spent, and the figure is the time to that refusal.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

from environment import git_state, machine

from sandbox.jobs import outputs as after
from sandbox.jobs.runner import Answer, JobLimits, Published

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "gate_cost.json"
BEFORE = "ba33e96"  # the last commit with the row-by-row gate
# name, answers, rows per answer, tables, rows per table
SHAPES = [
    ("small", 10, 1_000, 2, 500),
    ("medium", 20, 2_000, 4, 1_000),
    ("large", 100, 10_000, 20, 5_000),
]
PAIRS = 100  # the pairs shape: 100 x 100 label pairs in each of 100 answers


def gate_at(revision: str) -> types.ModuleType:
    """The gate module as it was at `revision`."""
    source = subprocess.run(
        ["git", "show", f"{revision}:sandbox/jobs/outputs.py"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    module = types.ModuleType("gate_before")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, f"{revision}:sandbox/jobs/outputs.py", "exec"), module.__dict__)
    return module


def shaped(answers: int, rows: int, tables: int, table_rows: int) -> tuple[list, list]:
    """Answers grouped by region and a per-answer key; tables republish their rows."""
    regions = [f"r{i}" for i in range(100)]
    held, published = [], []
    for a in range(answers):
        keys = [f"a{a}_k{k}" for k in range(rows // len(regions))]
        body = [[region, key, 40, 12.5] for key in keys for region in regions]
        held.append(Answer(["region", "key", "n", "mean"], body, [40] * len(body),
                           [False] * len(body)))  # fmt: skip
    columns = [["region", "label"], ["key", "label"], ["n", "count"], ["mean", "mean"]]
    for t in range(tables):
        published.append(Published(f"t{t}", columns, held[t % answers].rows[:table_rows]))
    return held, published


def pairs() -> tuple[list, list]:
    body = [[f"x{i}", f"y{j}", 40] for i in range(PAIRS) for j in range(PAIRS)]
    held = [Answer(["x", "y", "n"], body, [40] * len(body), [False] * len(body))] * 100
    columns = [["x", "label"], ["y", "label"], ["n", "count"]]
    half = len(body) // 2
    return held, [Published(f"t{t}", columns, body[t % 2 * half :][:half]) for t in range(20)]


def timed(gate: types.ModuleType, held: list, published: list, **budget: Any) -> tuple[float, str]:
    rules = gate.OutputRules()
    started = time.perf_counter()
    try:
        gate.check_outputs(published, held, rules, **budget)
        outcome = "checked"
    except gate.OutputRejected as exc:
        outcome = "refused: " + ",".join(v.rule for v in exc.violations)
    return time.perf_counter() - started, outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", default=BEFORE)
    parser.add_argument("--before-cap-s", type=float, default=60.0)
    args = parser.parse_args()
    before = gate_at(args.before)
    limits = JobLimits()
    rules = after.OutputRules()
    budget = after.gate_budget(limits, rules, seconds=20.0)
    rows, rate = [], None
    for name, answers, per_answer, tables, per_table in SHAPES:
        held, published = shaped(answers, per_answer, tables, per_table)
        checks = answers * per_answer * tables * per_table  # answer rows x published rows
        new_s, new_outcome = timed(after, held, published, budget=budget)
        predicted = checks * rate if rate else 0.0
        if predicted <= args.before_cap_s:
            old_s, _ = timed(before, held, published)
            rate, estimated = rate or old_s / checks, False
        else:
            old_s, estimated = predicted, True
        rows.append({"shape": name, "answers": answers, "rows_per_answer": per_answer,
                     "tables": tables, "rows_per_table": per_table, "before_s": round(old_s, 3),
                     "before_estimated": estimated, "after_s": round(new_s, 3),
                     "after_outcome": new_outcome})  # fmt: skip
    held, published = pairs()
    new_s, new_outcome = timed(after, held, published, budget=budget)
    per_table = len(published[0].rows)
    checks = len(held) * PAIRS**2 * len(published) * per_table
    rows.append({"shape": "pairs", "answers": len(held), "rows_per_answer": PAIRS**2,
                 "tables": len(published), "rows_per_table": per_table,
                 "before_s": round(checks * rate, 3), "before_estimated": True,
                 "after_s": round(new_s, 3), "after_outcome": new_outcome})  # fmt: skip
    report = {
        "command": f"python bench/gate_cost.py --before {args.before}"
        f" --before-cap-s {args.before_cap_s:g}",
        "machine": machine(),
        "git": git_state(),
        "budget": {"operations": budget.operations, "seconds": budget.seconds},
        "shapes": rows,
    }
    print(f"{'shape':<8} {'answers x rows':>15} {'tables x rows':>14} {'before':>12} "
          f"{'after':>9}  outcome after")  # fmt: skip
    for row in rows:
        old = f"{'~' if row['before_estimated'] else ''}{row['before_s']:.2f}s"
        print(f"{row['shape']:<8} {row['answers']:>5} x {row['rows_per_answer']:<7} "
              f"{row['tables']:>4} x {row['rows_per_table']:<6} {old:>12} "
              f"{row['after_s']:>8.2f}s  {row['after_outcome']}")  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

"""SmartNoise SQL's side of bench/dp_accuracy.py; runs in a venv of its own (it pins OpenDP 0.14).

Reads a JSON job on stdin: {"csv", "queries": {name: sql}, "runs", "epsilon", "delta",
"bounds": [low, high]}. Writes {name: {"answers": [rows, …], "seconds": [s, …], "epsilon"}}.
Each query gets the per-column ε at which SmartNoise's own accounting spends `epsilon` in all.
"""

from __future__ import annotations

import json
import sys
import time

import pandas as pd
import snsql
from snsql import Privacy


def main() -> None:
    job = json.load(sys.stdin)
    frame = pd.read_csv(job["csv"])
    low, high = job["bounds"]
    metadata = {
        "Database": {
            "bench": {
                "people": {
                    "max_ids": 1,
                    "row_privacy": False,
                    "censor_dims": True,
                    "person": {"type": "string", "private_id": True},
                    "district": {"type": "string"},
                    "age": {"type": "int"},
                    "income": {"type": "int", "lower": low, "upper": high},
                }
            }
        }
    }
    results = {}
    for name, sql in job["queries"].items():
        probe = snsql.from_df(
            frame, privacy=Privacy(epsilon=1.0, delta=job["delta"]), metadata=metadata
        )
        spent_at_one, _ = probe.get_privacy_cost(sql.format(run=0))
        epsilon = job["epsilon"] / float(spent_at_one)
        answers, seconds = [], []
        for run in range(job["runs"]):
            reader = snsql.from_df(
                frame, privacy=Privacy(epsilon=epsilon, delta=job["delta"]), metadata=metadata
            )
            started = time.perf_counter()
            rows = reader.execute(sql.format(run=run))
            seconds.append(time.perf_counter() - started)
            answers.append([[_plain(v) for v in row] for row in rows[1:]])
        results[name] = {"answers": answers, "seconds": seconds, "epsilon_per_column": epsilon}
    json.dump(results, sys.stdout)


def _plain(value: object) -> object:
    return value.item() if hasattr(value, "item") else value


if __name__ == "__main__":
    main()

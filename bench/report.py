"""The benchmark report: a chart of the TPC-H comparison and the README's tables, from results.

Run: .venv/bin/python bench/report.py  (make bench runs it last)
Reads bench/results/tpch_compare.json, gateway_load.json, dp_groupby.json and, when
bench/soak.py has written it, soak.json; draws bench/results/tpch.png and rewrites the README
between the `bench:report` markers.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
CHART = RESULTS / "tpch.png"
README = ROOT / "README.md"
START, END = "<!-- bench:report -->", "<!-- /bench:report -->"
WAYS = ("raw", "enclave", "http")


def chart(tpch: dict) -> None:
    scales = tpch["scales"]
    figure, axes = plt.subplots(1, len(scales), figsize=(5 * len(scales), 4), squeeze=False)
    for axis, entry in zip(axes[0], scales, strict=True):
        names = list(entry["queries"])
        width = 0.27
        for i, way in enumerate(WAYS):
            values = [entry["queries"][name][way]["p50_ms"] for name in names]
            axis.bar([x + (i - 1) * width for x in range(len(names))], values, width, label=way)
        axis.set_xticks(range(len(names)), names)
        axis.set_title(f"SF {entry['scale']:g} ({entry['lineitem_rows']:,} line items)")
        axis.set_ylabel("median ms")
    axes[0][0].legend()
    figure.suptitle(f"TPC-H, {tpch['threads']} DuckDB threads: raw DuckDB, Veil's enclave, HTTP")
    figure.tight_layout()
    figure.savefig(CHART, dpi=110)
    plt.close(figure)


def tpch_table(tpch: dict) -> list[str]:
    lines = [
        "| SF | query | raw DuckDB p50 | enclave p50 | HTTP p50 | enclave / raw | HTTP − enclave |",
        "|---|---|---|---|---|---|---|",
    ]
    for entry in tpch["scales"]:
        for name, q in entry["queries"].items():
            lines.append(
                f"| {entry['scale']:g} | {name} | {q['raw']['p50_ms']:.1f} ms "
                f"| {q['enclave']['p50_ms']:.1f} ms | {q['http']['p50_ms']:.1f} ms "
                f"| {q['enclave_over_raw']:.2f}× | {q['http_minus_enclave_ms']:.1f} ms |"
            )
    lines += ["", "| SF | line items | peak memory, raw DuckDB | peak memory, enclave worker |",
              "|---|---|---|---|"]  # fmt: skip
    for entry in tpch["scales"]:
        peak = entry["peak_memory_mib"]
        lines.append(f"| {entry['scale']:g} | {entry['lineitem_rows']:,} | {peak['raw']} MiB "
                     f"| {peak['enclave']} MiB |")  # fmt: skip
    return lines


def _runs(runs: list[dict]) -> str:
    return ", ".join(
        f"{run['requests_per_s']:.0f} ({'/'.join(map(str, run['connections_per_process']))})"
        for run in runs
    )


def load_table(load: dict) -> list[str]:
    lines = [
        "| concurrency | Veil req/s | Veil p50 / p99 | baseline req/s | baseline p50 / p99 "
        "| Veil / baseline | errors | ledger entries / answers | Veil runs: req/s (connections "
        "per process) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for ours, theirs in zip(load["veil"], load["baseline"], strict=True):
        lines.append(
            f"| {ours['concurrency']} | {ours['requests_per_s']:.1f} "
            f"| {ours['latency_ms']['p50_ms']:.1f} / {ours['latency_ms']['p99_ms']:.1f} ms "
            f"| {theirs['requests_per_s']:.1f} "
            f"| {theirs['latency_ms']['p50_ms']:.1f} / {theirs['latency_ms']['p99_ms']:.1f} ms "
            f"| {ours['share_of_baseline']:.0%} | {ours['error_total']} "
            f"| {ours['ledger_entries_gained']} / {ours['queries_answered_by_veil']} "
            f"| {_runs(ours['runs'])} |"
        )
    return lines


def private_table(private: dict) -> list[str]:
    """Each way against the raw query of its own alternating run."""
    raw = private["figures"]["raw"]
    lines = [
        "| way | answered under | p50 | p95 | raw DuckDB p50, same run | over raw DuckDB |",
        "|---|---|---|---|---|---|",
        f"| raw DuckDB on the Parquet file, all runs | | {raw['p50_ms']:.1f} ms "
        f"| {raw['p95_ms']:.1f} ms | | 1.00× |",
    ]
    described = {
        "one_pass": "HTTP, card declares `max_rows_per_unit`",
        "bounded": "HTTP, bounded per person",
        "thresholds": "HTTP, no personal data",
    }
    for way, label in described.items():
        figures = private["figures"][way]
        lines.append(
            f"| {label} | {private['modes'][way]} | {figures['p50_ms']:.1f} ms "
            f"| {figures['p95_ms']:.1f} ms | {private['raw_p50_ms'][way]:.1f} ms "
            f"| {private['over_raw'][way]:.2f}× |"
        )
    return lines


def soak_table(soak: dict) -> list[str]:
    lines = [
        "| traffic | requests | answered | refused, by code | errors | p50 / p99 |",
        "|---|---|---|---|---|---|",
    ]
    for kind, row in soak["traffic"].items():
        latency = row["latency"] or {"p50_ms": 0.0, "p99_ms": 0.0}
        refused = ", ".join(f"{code} × {n}" for code, n in row["refused"].items()) or "–"
        errors = sum(row["errors"].values())
        lines.append(f"| {kind} | {row['requests']:,} | {row['ok']:,} | {refused} | {errors} "
                     f"| {latency['p50_ms']:.0f} / {latency['p99_ms']:.0f} ms |")  # fmt: skip
    lines += ["", "| process | start | end | max | peak, middle → last third | slope, last third "
              "| trend, whole recycle periods |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in soak["memory"]:
        if "start_mb" in row and row["process"] in ("main", "enclave workers"):
            peaks = (
                f"{row['peak_middle_third_mb']:.0f} → {row['peak_last_third_mb']:.0f} MB "
                f"({row['peak_rise_mb']:+.0f})"
                if row["peak_rise_mb"] is not None
                else "–"
            )
            name = f"{row['gateway']} {row['process']}"
            lines.append(f"| {name} | {row['start_mb']:.0f} MB | {row['end_mb']:.0f} MB "
                         f"| {row['max_mb']:.0f} MB | {peaks} "
                         f"| {_per_min(row['last_third_slope_mb_per_min'])} "
                         f"| {_per_min(row['whole_period_trend_mb_per_min'])} |")  # fmt: skip
    ledger, settlement = soak["ledger"], soak["settlement"]
    lost = ledger["receipts_missing"] + ledger["receipts_mismatched"]
    lines += [
        "",
        f"{soak['error_total']} errors; {ledger['receipts']:,} receipts and "
        f"{ledger['accepted_changes']:,} grant and job changes checked against "
        f"{ledger['entries']:,} ledger entries, {lost + ledger['accepted_changes_without_entry']} "
        f"lost; settlement {settlement['settlement_total_minor']:,} = charges received "
        f"{settlement['charges_received_minor']:,}; jobs: "
        + ", ".join(f"{n} {status}" for status, n in soak["jobs"]["statuses"].items())
        + f"; `veil ledger verify` exit {soak['verify']['exit_code']}. Verdict: "
        + ", ".join(f"{name.replace('_', ' ')} {'yes' if ok else '**no**'}"
                    for name, ok in soak["verdict"].items()) + ".",
    ]  # fmt: skip
    return lines


def _per_min(slope: float | None) -> str:
    return "–" if slope is None else f"{slope:+.1f} MB/min"


def soak_section(path: Path) -> list[str]:
    """The soak's tables, when bench/soak.py has written its results."""
    if not path.exists():
        return []
    soak = json.loads(path.read_text())
    return [
        "",
        f"`{soak['command']}` (commit {soak['git']['commit'][:7]}, {soak['postgres']}, "
        f"{soak['policy_engine']} policy engine): two gateway processes on one PostgreSQL "
        f"database, {soak['duration_s']:g} s of mixed traffic, the revocation storm from "
        f"{soak['phases']['storm_from_s']:g} s to {soak['phases']['storm_until_s']:g} s:",
        "",
        *soak_table(soak),
    ]


def main() -> None:
    tpch = json.loads((RESULTS / "tpch_compare.json").read_text())
    load = json.loads((RESULTS / "gateway_load.json").read_text())
    private = json.loads((RESULTS / "dp_groupby.json").read_text())
    chart(tpch)
    cpu = tpch["machine"]["cpu_model"]
    body = [
        START,
        f"`make bench` ({tpch['machine']['cpus']} × {cpu}, DuckDB {tpch['duckdb']}, "
        f"commit {tpch['git']['commit'][:7]}). `{tpch['command']}`:",
        "",
        *tpch_table(tpch),
        "",
        "![TPC-H medians](bench/results/tpch.png)",
        "",
        f"`{load['command']}` (commit {load['git']['commit'][:7]}, "
        f"{load['runs']} runs of {load['duration_s']} s per concurrency, "
        f"the median run shown; {load['wrk']}), the query `{load['sql']}`:",
        "",
        *load_table(load),
        "",
        f"`{private['command']}` (commit {private['git']['commit'][:7]}): "
        f"{private['rows']:,} rows of {private['units']:,} people "
        "registered over the API, `SELECT district, sex, count(*), avg(income), sum(visits) "
        "… GROUP BY district, sex` over HTTP with default settings, each round a new question, "
        + (
            "every way in one run:"
            if private.get("interleaved", True)
            else "each way in its own run alternating with raw DuckDB:"
        ),
        "",
        *private_table(private),
        *soak_section(RESULTS / "soak.json"),
        END,
    ]
    text = README.read_text()
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    README.write_text(before + "\n".join(body) + after)
    print(f"wrote {CHART.relative_to(ROOT)} and the README's benchmark report")


if __name__ == "__main__":
    main()

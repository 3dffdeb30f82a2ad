"""Latency figures every benchmark reports the same way: percentiles of timed samples."""

from __future__ import annotations

import math
import statistics


def summarise(samples_ns: list[int]) -> dict[str, float | int]:
    """p50 (the median), p95, p99 (nearest rank), min, max and mean, in milliseconds."""
    ordered = sorted(samples_ns)

    def rank(q: float) -> float:
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

    def ms(ns: float) -> float:
        return round(ns / 1e6, 3)

    return {
        "p50_ms": ms(statistics.median(ordered)),
        "p95_ms": ms(rank(0.95)),
        "p99_ms": ms(rank(0.99)),
        "min_ms": ms(ordered[0]),
        "max_ms": ms(ordered[-1]),
        "mean_ms": ms(statistics.fmean(ordered)),
        "runs": len(ordered),
    }

"""OpenDP's mechanisms as Veil uses them: Laplace noise on vectors, partition selection, accuracy.

Nothing here samples noise or adds up privacy loss itself: every measurement is built by
OpenDP, its scale found against OpenDP's own privacy map, and its loss read from that map.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import opendp.prelude as dp

# "honest-but-curious" only for `composed`: its placeholders carry losses OpenDP's own maps
# computed for the real measurements, so OpenDP composes them; no data passes through them.
dp.enable_features("contrib", "honest-but-curious")

# Confidence of the intervals released with every noisy value.
ALPHA = 0.05
# The widest threshold partition selection searches for.
MAX_THRESHOLD = 2**31 - 1


@dataclass(frozen=True)
class Noisy:
    """A released vector and the mechanism behind it."""

    values: list
    mechanism: str
    scale: float
    half_width: float  # of the 95% interval around each value


def laplace(values: list, sensitivity: float, epsilon: float, integer: bool) -> Noisy:
    """Each value plus Laplace noise: the vector as a whole is ε-DP when one unit moves it by at
    most `sensitivity` in L1."""
    scale = _laplace_scale(len(values), sensitivity, epsilon, integer)
    if values:
        measurement = _laplace(len(values), scale, integer)
        noisy = measurement([int(v) for v in values] if integer else [float(v) for v in values])
    else:
        noisy = []
    return Noisy(list(noisy), "laplace", scale, half_width(scale))


def select_partitions(
    counts: dict[str, int], max_groups: int, epsilon: float, delta: float
) -> dict[str, int]:
    """The partitions released by OpenDP's Laplace threshold on distinct-unit counts, with their
    noisy counts: a unit is in at most `max_groups` partitions, once in each."""
    scale, threshold = _selection(max_groups, epsilon, delta)
    measurement = _threshold(scale, threshold)
    return dict(measurement({key: int(value) for key, value in counts.items()}))


def _space(size: int, integer: bool) -> tuple:
    atom = dp.atom_domain(T="i64") if integer else dp.atom_domain(T=float, nan=False)
    metric = dp.l1_distance(T="i64") if integer else dp.l1_distance(T=float)
    return dp.vector_domain(atom, size=max(size, 1)), metric


@lru_cache(maxsize=256)
def _laplace_scale(size: int, sensitivity: float, epsilon: float, integer: bool) -> float:
    d_in = int(sensitivity) if integer else float(sensitivity)
    scale = float(sensitivity) / epsilon
    if _laplace(size, scale, integer).map(d_in) <= epsilon:
        return scale
    return dp.binary_search_param(
        lambda s: _laplace(size, s, integer), d_in=d_in, d_out=epsilon, bounds=(scale, scale * 2)
    )


@lru_cache(maxsize=1024)
def _laplace(size: int, scale: float, integer: bool) -> dp.Measurement:
    return _space(size, integer) >> dp.m.then_laplace(scale=scale)


@lru_cache(maxsize=256)
def loss(size: int, sensitivity: float, scale: float, integer: bool) -> float:
    """ε of a Laplace release, as OpenDP's privacy map states it."""
    d_in = int(sensitivity) if integer else float(sensitivity)
    return _laplace(size, scale, integer).map(d_in)


@lru_cache(maxsize=256)
def _selection(max_groups: int, epsilon: float, delta: float) -> tuple[float, int]:
    """The scale and the smallest threshold at which selection is (ε, δ)-DP."""
    scale = max_groups / epsilon
    d_in = (max_groups, max_groups, 1)
    for _ in range(8):
        threshold = dp.binary_search(
            lambda t, s=scale: _threshold(s, t).map(d_in)[1] <= delta, bounds=(1, MAX_THRESHOLD)
        )
        spent_epsilon, _ = _threshold(scale, threshold).map(d_in)
        if spent_epsilon <= epsilon:
            return scale, threshold
        scale *= (spent_epsilon / epsilon) * (1 + 1e-9)  # OpenDP's map rounds up: widen a little
    raise ValueError("partition selection cannot meet its ε")


def selection_scale(max_groups: int, epsilon: float, delta: float) -> float:
    return _selection(max_groups, epsilon, delta)[0]


@lru_cache(maxsize=1024)
def half_width(scale: float, alpha: float = ALPHA) -> float:
    """Half the (1 - alpha) interval of Laplace noise of this scale."""
    return dp.laplacian_scale_to_accuracy(scale, alpha)


def selection_loss(max_groups: int, epsilon: float, delta: float) -> tuple[float, float]:
    """(ε, δ) of partition selection, as OpenDP's privacy map states it."""
    scale, threshold = _selection(max_groups, epsilon, delta)
    return _threshold(scale, threshold).map((max_groups, max_groups, 1))


def _threshold(scale: float, threshold: int) -> dp.Measurement:
    domain = dp.map_domain(dp.atom_domain(T=str), dp.atom_domain(T="i64"))
    metric = dp.l01inf_distance(dp.absolute_distance(T="i64"))
    return dp.m.make_laplace_threshold(domain, metric, scale=scale, threshold=threshold)


def composed(losses: list[tuple[float, float]]) -> tuple[float, float]:
    """The (ε, δ) of running every measurement once, by OpenDP's composition of their maps."""
    return _composed(tuple(losses))


@lru_cache(maxsize=1024)
def _composed(losses: tuple[tuple[float, float], ...]) -> tuple[float, float]:
    if not losses:
        return 0.0, 0.0
    space = dp.atom_domain(T=bool), dp.symmetric_distance()
    parts = [_placeholder(space, epsilon, delta) for epsilon, delta in losses]
    return dp.c.make_composition(parts).map(1)


def _placeholder(space: tuple, epsilon: float, delta: float) -> dp.Measurement:
    return dp.m.make_user_measurement(
        *space,
        dp.approximate(dp.max_divergence()),
        function=lambda _: None,
        privacy_map=lambda d_in: (epsilon * d_in, delta if d_in else 0.0),
        TO="ExtrinsicObject",
    )


@dataclass(frozen=True)
class QuantileRelease:
    values: list[float]
    scale: float
    rank_error: float  # 95%: how many rows the released value's rank may be off the true one


def quantiles(
    groups: list[list[float]],
    candidates: list[float],
    alpha: float,
    rows_per_unit: int,
    epsilon: float,
) -> QuantileRelease:
    """OpenDP's private quantile (the exponential mechanism over `candidates`) per group: each
    is ε-DP when one unit adds or removes at most `rows_per_unit` of its values."""
    scale = _quantile_scale(tuple(candidates), alpha, rows_per_unit, epsilon)
    measurement = _quantile(tuple(candidates), alpha, scale)
    # An empty group is answered too (uniformly over the candidates): a NULL would say empty.
    values = [measurement(values) for values in groups]
    rank_error = scale * math.log(len(candidates) / ALPHA)
    return QuantileRelease(values, scale, rank_error)


def quantile_loss(
    candidates: list[float], alpha: float, rows_per_unit: int, epsilon: float
) -> float:
    scale = _quantile_scale(tuple(candidates), alpha, rows_per_unit, epsilon)
    return _quantile(tuple(candidates), alpha, scale).map(rows_per_unit)


@lru_cache(maxsize=64)
def _quantile_scale(
    candidates: tuple[float, ...], alpha: float, rows_per_unit: int, epsilon: float
) -> float:
    return dp.binary_search_param(
        lambda s: _quantile(candidates, alpha, s), d_in=rows_per_unit, d_out=epsilon
    )


@lru_cache(maxsize=64)
def _quantile(candidates: tuple[float, ...], alpha: float, scale: float) -> dp.Measurement:
    return dp.m.make_private_quantile(
        dp.vector_domain(dp.atom_domain(T=float, nan=False)),
        dp.symmetric_distance(),
        dp.max_divergence(),
        candidates=list(candidates),
        alpha=alpha,
        scale=scale,
    )

"""Statistical helpers a job may call: models fitted from aggregated sufficient statistics.

They take and return plain numbers and lists, so a job can fit a model from the sums
`sql()` released without ever holding a row.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

MAX_TERMS = 50


def simple_regression(n: float, sum_x: float, sum_y: float, sum_xx: float, sum_xy: float) -> dict:
    """Intercept and slope of y on x from COUNT, SUM(x), SUM(y), SUM(x*x) and SUM(x*y)."""
    spread = n * sum_xx - sum_x * sum_x
    if n <= 1 or spread == 0:
        raise ValueError("the statistics do not determine a line")
    slope = (n * sum_xy - sum_x * sum_y) / spread
    return {"intercept": (sum_y - slope * sum_x) / n, "slope": slope}


def least_squares(xtx: list[list[float]], xty: list[float]) -> list[float]:
    """Coefficients b solving (X'X) b = X'y, from the cross-product sums of the design matrix."""
    size = len(xty)
    if not 0 < size <= MAX_TERMS or len(xtx) != size or any(len(row) != size for row in xtx):
        raise ValueError("X'X must be square and match X'y")
    # Exact arithmetic, so an ill-conditioned system cannot make results depend on rounding.
    augmented = [[_exact(v) for v in row] + [_exact(xty[i])] for i, row in enumerate(xtx)]
    for column in range(size):
        found = next((r for r in range(column, size) if augmented[r][column] != 0), None)
        if found is None:
            raise ValueError("X'X is singular")
        augmented[column], augmented[found] = augmented[found], augmented[column]
        head = augmented[column][column]
        pivot = augmented[column] = [v / head for v in augmented[column]]
        for r in range(size):
            if r != column and augmented[r][column] != 0:
                factor = augmented[r][column]
                augmented[r] = [a - factor * b for a, b in zip(augmented[r], pivot, strict=True)]
    return [float(row[-1]) for row in augmented]


def _exact(value: Any) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("statistics are numbers")
    return Fraction(value)


FUNCTIONS = {"simple_regression": simple_regression, "least_squares": least_squares}

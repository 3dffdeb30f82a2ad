"""A column's value as the enclave may compute with it: measures clamped, DOUBLEs canonical.

Applied once when an asset is stored, or on every scan of an asset stored before that was
so; either way every query sees the same values.
"""

from __future__ import annotations

from decimal import Decimal

from sqlglot import exp

from sandbox.cards import Column, Role
from sandbox.guard.syntax import data_type
from sandbox.guard.types import holds


def bounded(reference: exp.Expression, column: Column) -> exp.Expression:
    """`reference` clamped to the column's bounds (a measure) and made canonical (a DOUBLE)."""
    if column.role is Role.MEASURE and column.bounds is not None:
        typed = data_type(column.type)
        low, high = (_bound(bound, typed) for bound in column.bounds)
        reference = exp.Case(
            ifs=[
                exp.If(this=exp.LT(this=reference, expression=low), true=low.copy()),
                exp.If(this=exp.GT(this=reference.copy(), expression=high), true=high.copy()),
            ],
            default=reference.copy(),
        )
    if column.type == "DOUBLE":
        reference = canonical(reference)  # stored -0.0 and signed NaN too
    return reference


def stored_exactly(column: Column) -> bool:
    """Whether the card's bounds are values of the column's own type, so that data clamped to
    them as stored (`bounded`) lies within the card's bounds exactly, not within rounded ones."""
    if column.type == "DOUBLE" or column.bounds is None:
        return True
    typed = data_type(column.type)
    return all(holds(Decimal(repr(float(bound))), typed) for bound in column.bounds)


def needs_bounding(column: Column) -> bool:
    return (column.role is Role.MEASURE and column.bounds is not None) or column.type == "DOUBLE"


def canonical(node: exp.Expression) -> exp.Expression:
    """One spelling per DOUBLE value: -0.0 becomes 0, NaN and infinities NULL (see rewrite)."""
    fixed = exp.TryCast(this=node, to=data_type("DECIMAL(38, 10)"))
    return exp.TryCast(this=fixed, to=data_type("DOUBLE"))


def _bound(value: float, data_type: exp.DataType) -> exp.Expression:
    """A bound in its column's type; one that does not fit becomes NULL and clamps nothing."""
    number = exp.Literal.number(int(value) if float(value).is_integer() else value)
    return exp.TryCast(this=number, to=data_type.copy())

"""Sets a job builds hold only values hashed by what they are, never by where they are.

A set iterates in the order of its elements' hashes. Objects without a value hash (functions,
module proxies, results, a NaN, and in Python 3.11 `None`, also inside an empty or one-long
`range`) hash by address, so a set of them
prints, pops and iterates in an order that spells address bits; a red-team round read bits
4 to 21 of `sql`'s address that way. Every way a job makes or grows a set goes through here:
literals and comprehensions, `set` and `frozenset`, the methods that add, and the operators
`| & ^ -` (a dict's key and item views make sets with them too).
"""

from __future__ import annotations

import decimal
import fractions
import math
import operator
import sys
from collections.abc import Callable, Iterable
from typing import Any

_BY_VALUE = (bool, int, str, bytes, fractions.Fraction)
_NONE_BY_VALUE = sys.version_info >= (3, 12)  # 3.11 hashes None by its address
SET_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "|": operator.or_,
    "&": operator.and_,
    "^": operator.xor,
    "-": operator.sub,
}
IN_PLACE_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "|": operator.ior,
    "&": operator.iand,
    "^": operator.ixor,
    "-": operator.isub,
}


class SetRefused(TypeError):
    """A set would hold a value hashed by its address; the message names nothing."""

    def __init__(self) -> None:
        super().__init__(
            "a set in a job holds numbers (not NaN), text, bytes and tuples of them, not None"
        )


def hashed_by_value(value: Any) -> bool:
    """Whether `hash(value)` depends on the value alone, not on where it lives in memory."""
    pending = [value]
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind in _BY_VALUE or (item is None and _NONE_BY_VALUE):
            continue
        if kind is float and not math.isnan(item):
            continue
        if kind is complex and not (math.isnan(item.real) or math.isnan(item.imag)):
            continue
        if kind is decimal.Decimal and not item.is_nan():
            continue
        # A range hashes as (length, start, step), with None for what its length leaves out.
        if kind is range and (len(item) >= 2 or _NONE_BY_VALUE):
            continue
        if kind is tuple or kind is frozenset:
            pending.extend(item)
            continue
        return False
    return True


def checked(made: Any) -> Any:
    """`made` itself when it is not a set, or a set of values hashed by value; else refused."""
    if isinstance(made, set | frozenset) and not all(hashed_by_value(item) for item in made):
        raise SetRefused
    return made


def _values(iterable: Iterable[Any]) -> tuple[Any, ...]:
    values = tuple(iterable)
    if not all(hashed_by_value(value) for value in values):
        raise SetRefused
    return values


class _SetType(type):
    """A stand-in for `set` or `frozenset` in a job's builtins: `isinstance` works, calls check."""

    made: type

    def __instancecheck__(cls, value: Any) -> bool:
        return isinstance(value, cls.made)

    def __subclasscheck__(cls, subclass: type) -> bool:
        return issubclass(subclass, cls.made)

    def __call__(cls, iterable: Iterable[Any] = ()) -> Any:  # type: ignore[override]
        return cls.made(_values(iterable))


class Set(metaclass=_SetType):
    """What a job calls `set`."""

    made = set


class FrozenSet(metaclass=_SetType):
    """What a job calls `frozenset`."""

    made = frozenset


def operate(symbol: str, left: Any, right: Any) -> Any:
    """`left <symbol> right` for `| & ^ -`, refused when it makes a set of address-hashed values."""
    return checked(SET_OPERATORS[symbol](left, right))


def operate_in_place(symbol: str, target: Any, value: Any) -> Any:
    """`target <symbol>= value` for `| & ^ -`: a set grows in place only by checked values."""
    if type(target) is set and isinstance(value, set | frozenset):
        _values(value)
        return IN_PLACE_OPERATORS[symbol](target, value)
    return checked(IN_PLACE_OPERATORS[symbol](target, value))


class Growing:
    """A set's method that can add values, bound to the set: values are checked before they go
    in, and a new set is checked before the job gets it. Holds no globals a job could reach."""

    __slots__ = ("_made", "_name")

    def __init__(self, made: set[Any] | frozenset[Any], name: str) -> None:
        self._made = made
        self._name = name

    def __call__(self, *others: Any) -> Any:
        method = getattr(self._made, self._name)
        if self._name in MAKING:
            return checked(method(*others))
        if self._name == "add":
            return method(*_values(others))
        return method(*(_values(other) for other in others))


MAKING = frozenset({"union", "symmetric_difference"})
# The methods that can put a new value into a set.
GROWING = frozenset({(set, "add"), (set, "update"), (set, "symmetric_difference_update"),
                     *((kind, name) for kind in (set, frozenset) for name in MAKING)})  # fmt: skip

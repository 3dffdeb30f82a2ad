"""The `itertools` a job imports: the same functions written as Python generators.

CPython 3.11's C iterators free a child iterator while a job's callback may still be running
inside it: a red-team round turned `islice`, then `cycle`, `chain` and `pairwise`, re-entered
from their own callbacks, into use-after-frees it could steer. A generator cannot be re-entered
(Python raises "generator already executing"), so these give the same results without that
class of bug. `cycle` and `islice` are left out: the first never ends, and slicing a list does
what the second does.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator
from typing import Any

_EMPTY = object()


def count(start: Any = 0, step: Any = 1) -> Iterator[Any]:
    value = start
    while True:
        yield value
        value += step


def repeat(value: Any, times: int | None = None) -> Iterator[Any]:
    if times is None:
        while True:
            yield value
    for _ in range(times):
        yield value


def accumulate(
    values: Iterable[Any], func: Callable[[Any, Any], Any] = operator.add, *, initial: Any = None
) -> Iterator[Any]:
    iterator = iter(values)
    total = initial
    if initial is None:
        total = next(iterator, _EMPTY)
        if total is _EMPTY:
            return
    yield total
    for value in iterator:
        total = func(total, value)
        yield total


def chain(*iterables: Iterable[Any]) -> Iterator[Any]:
    for iterable in iterables:
        yield from iterable


def compress(data: Iterable[Any], selectors: Iterable[Any]) -> Iterator[Any]:
    return (value for value, selected in zip(data, selectors, strict=False) if selected)


def dropwhile(predicate: Callable[[Any], Any], values: Iterable[Any]) -> Iterator[Any]:
    iterator = iter(values)
    for value in iterator:
        if not predicate(value):
            yield value
            break
    yield from iterator


def takewhile(predicate: Callable[[Any], Any], values: Iterable[Any]) -> Iterator[Any]:
    for value in values:
        if not predicate(value):
            return
        yield value


def filterfalse(predicate: Callable[[Any], Any] | None, values: Iterable[Any]) -> Iterator[Any]:
    test = bool if predicate is None else predicate
    return (value for value in values if not test(value))


def starmap(func: Callable[..., Any], values: Iterable[Iterable[Any]]) -> Iterator[Any]:
    return (func(*arguments) for arguments in values)


def pairwise(values: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
    iterator = iter(values)
    for previous in iterator:
        for value in iterator:
            yield previous, value
            previous = value
        return


def zip_longest(*iterables: Iterable[Any], fillvalue: Any = None) -> Iterator[tuple[Any, ...]]:
    iterators = [iter(iterable) for iterable in iterables]
    done = object()
    while iterators:
        row = [next(iterator, done) for iterator in iterators]
        if all(value is done for value in row):
            return
        yield tuple(fillvalue if value is done else value for value in row)


def groupby(
    values: Iterable[Any], key: Callable[[Any], Any] | None = None
) -> Iterator[tuple[Any, list[Any]]]:
    """Runs of consecutive values with one key; each group is a list, read at once."""
    group: list[Any] = []
    current = marker = object()
    for value in values:
        value_key = value if key is None else key(value)
        if current is not marker and value_key != current:
            yield current, group
            group = []
        current = value_key
        group.append(value)
    if current is not marker:
        yield current, group


def product(*iterables: Iterable[Any], repeat: int = 1) -> Iterator[tuple[Any, ...]]:
    pools = [tuple(pool) for pool in iterables] * repeat
    result: list[tuple[Any, ...]] = [()]
    for pool in pools:
        result = [row + (value,) for row in result for value in pool]
    yield from result


def permutations(values: Iterable[Any], r: int | None = None) -> Iterator[tuple[Any, ...]]:
    pool = tuple(values)
    size = len(pool) if r is None else r
    for indices in product(range(len(pool)), repeat=size):
        if len(set(indices)) == size:
            yield tuple(pool[i] for i in indices)


def combinations(values: Iterable[Any], r: int) -> Iterator[tuple[Any, ...]]:
    pool = tuple(values)
    for indices in permutations(range(len(pool)), r):
        if sorted(indices) == list(indices):
            yield tuple(pool[i] for i in indices)


def combinations_with_replacement(values: Iterable[Any], r: int) -> Iterator[tuple[Any, ...]]:
    pool = tuple(values)
    for indices in product(range(len(pool)), repeat=r):
        if sorted(indices) == list(indices):
            yield tuple(pool[i] for i in indices)


FUNCTIONS = {
    function.__name__: function
    for function in (
        count, repeat, accumulate, chain, compress, dropwhile, takewhile, filterfalse, starmap,
        pairwise, zip_longest, groupby, product, permutations, combinations,
        combinations_with_replacement,
    )
}  # fmt: skip

"""What a job can reach, searched: chains of attribute reads, calls, items and caught exceptions
over everything a job can hold, none of which may lead to a module, a frame, a code object,
a traceback, a class's namespace, a module's globals or the interpreter's builtins.

The chains are walked through the job's own hooks (`read_attribute`, `blank_exception`), the
way compiled job code walks them. A breadth-first search covers every short chain; hypothesis
draws longer ones with calls. A control walk with no guard shows the search can find escapes.
"""

from __future__ import annotations

import builtins
import collections
import decimal
import fractions
import statistics
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.jobs import helpers
from sandbox.jobs.attributes import ATTRIBUTES, CLASS_ATTRIBUTES, read_attribute
from sandbox.jobs.gate import blank_exception, compile_job, job_globals
from sandbox.jobs.modules import OFFERED, ModuleProxy, importer

# Names that walk or reveal the host when readable, whatever the type.
WALKERS = (
    "format", "format_map", "Formatter", "Template", "attrgetter", "methodcaller", "obj", "name",
    "args", "gi_frame", "gi_code", "gi_yieldfrom", "cr_frame", "ag_frame", "f_back", "f_globals",
    "f_locals", "f_builtins", "tb_frame", "tb_next", "func_globals", "func_code", "im_self",
    "im_func", "mapping", "sys", "os", "math", "builtins", "modules", "path", "maketrans",
    "translate", "encode", "samples", "getcontext", "_offered", "_name", "__globals__",
    "__self__", "__class__", "__dict__", "__subclasses__", "__builtins__", "__traceback__",
    "__context__", "__cause__", "__func__", "__code__", "__closure__", "__module__",
    "__reduce__", "__reduce_ex__", "__getattribute__", "__init_subclass__",
)  # fmt: skip
CALL_ARGUMENTS: tuple[tuple[Any, ...], ...] = ((), (0,), ("s",), ([1, 2],), ({"a": 1},))
MODULE_NAMESPACES = {id(vars(module)) for module in list(sys.modules.values()) if module}


def escaped(value: Any) -> bool:
    """Whether a job holding `value` holds a way into the host."""
    host_kinds = (types.ModuleType, types.FrameType, types.CodeType, types.TracebackType,
                  types.MappingProxyType, types.CellType)  # fmt: skip
    return (
        isinstance(value, host_kinds)
        or value is vars(builtins)
        or id(value) in MODULE_NAMESPACES
        or (isinstance(value, types.FunctionType) and value.__globals__ is not JOB_GLOBALS)
        and value not in HANDED_IN
    )


JOB_GLOBALS = job_globals({})
HANDED_IN = {
    helpers.simple_regression,
    helpers.least_squares,
    *[v for offered in OFFERED.values() for v in offered.values() if callable(v)],
}


def job_function() -> Callable[..., Any]:
    """A function as a job defines one: compiled under the gate, in the job's globals."""
    exec(compile_job("def f(x=1):\n    return [x]\ng = (y for y in [1])"), JOB_GLOBALS)  # noqa: S102
    return JOB_GLOBALS["f"]


def roots() -> list[Any]:
    """Everything a job can hold before it does anything: builtins, proxies, hooks, values."""
    held: list[Any] = list(JOB_GLOBALS["__builtins__"].values())
    load = importer()
    for name, offered in OFFERED.items():
        held.append(load(name))
        held.extend(offered.values())
    held.extend([JOB_GLOBALS[hook] for hook in JOB_GLOBALS if hook.startswith("_") and hook != "__builtins__"])  # fmt: skip
    held.extend([helpers.simple_regression, helpers.least_squares, job_function(), JOB_GLOBALS["g"]])  # fmt: skip
    held.extend([
        0, True, 1.5, 2j, "{0.append.nope}", [1], (1,), range(3), slice(1, 2), {"a": 1}, {1},
        frozenset({1}), decimal.Decimal("1.5"), fractions.Fraction(1, 3),
        collections.Counter("aab"), collections.OrderedDict(a=1), collections.defaultdict(list),
        collections.deque([1]), statistics.NormalDist(0, 1),
        statistics.linear_regression([1, 2, 3], [2, 4, 7]), iter([1]), {"a": 1}.items(),
        map(abs, [1]), zip([1]), enumerate([1]), reversed([1]), filter(None, [1]),
    ])  # fmt: skip
    held.extend(blank_exception(kind()) for kind in (Exception, AttributeError, KeyError))
    return held


ROOTS = roots()
VOCABULARY = sorted(
    set(WALKERS)
    | {name for value in ROOTS for name in dir(value)}
    | {name for names in ATTRIBUTES.values() for name in names}
    | {name for names in CLASS_ATTRIBUTES.values() for name in names}
)


def step(value: Any, action: tuple[str, Any], hook: Callable[[Any, str], Any]) -> Iterator[Any]:
    """What one action on `value` gives a job: the result, or the exception it can catch."""
    kind, argument = action
    try:
        if kind == "attribute":
            yield hook(value, argument)
        elif kind == "call":
            if callable(value):
                yield value(*argument)
        elif kind == "item":
            yield value[argument]
        elif kind == "iterate":
            yield next(iter(value))
    except Exception as caught:  # noqa: BLE001 - what a job's `except Exception as e` binds
        yield blank_exception(caught) if hook is read_attribute else caught


def kind_of(value: Any) -> Any:
    """What the allow-list decides by: the type of a plain value, the object itself otherwise."""
    if isinstance(value, type) or callable(value) or type(value) is ModuleProxy:
        return ("object", id(value))
    return ("type", type(value))


def test_no_short_chain_of_attributes_and_calls_escapes() -> None:
    """Every chain of up to four reads or plain calls from every root, exhaustively; values
    are told apart by what the allow-list decides by, so each kind is walked once."""
    actions = [("attribute", name) for name in VOCABULARY] + [("call", ())]
    frontier, seen = list(ROOTS), {kind_of(v) for v in ROOTS}
    for _ in range(4):
        reached = []
        for value in frontier:
            for action in actions:
                for found in step(value, action, read_attribute):
                    assert not escaped(found), (value, action, found)
                    if kind_of(found) not in seen:
                        seen.add(kind_of(found))
                        reached.append(found)
        frontier = reached
    assert len(seen) > len(ROOTS)  # the search went somewhere


ACTIONS = st.one_of(
    st.tuples(st.just("attribute"), st.sampled_from(VOCABULARY)),
    st.tuples(st.just("call"), st.sampled_from(CALL_ARGUMENTS)),
    st.tuples(st.just("item"), st.sampled_from([0, -1, "a", slice(None)])),
    st.tuples(st.just("iterate"), st.none()),
)


@settings(max_examples=3000, deadline=None, derandomize=True)
@given(root=st.sampled_from(ROOTS), chain=st.lists(ACTIONS, min_size=1, max_size=8))
def test_no_chain_with_calls_items_and_exceptions_escapes(root: Any, chain: list) -> None:
    held = [root]
    for action in chain:
        held = [found for value in held for found in step(value, action, read_attribute)]
        assert not any(escaped(value) for value in held), (root, chain, held)


def test_the_search_finds_an_escape_without_the_guard() -> None:
    """The control: plain getattr and real exceptions, and the same search escapes at once."""
    assert any(
        escaped(found)
        for value in ROOTS
        for name in ("__globals__", "__self__", "__dict__")
        for found in step(value, ("attribute", name), getattr)
    )
    # The escape seen from outside, walked as one chain with no guard: it ends in a module.
    held = [collections.UserString("{0.__globals__[sys].nope}")]
    for action in (("attribute", "format"), ("call", (statistics.mean,)), ("attribute", "obj")):
        held = [found for value in held for found in step(value, action, getattr)]
    assert held == [sys] and escaped(held[0])


@pytest.mark.parametrize("value", [sys, vars(builtins), sys._getframe(), compile("1", "x", "eval")])
def test_the_predicate_knows_the_host(value: Any) -> None:
    assert escaped(value)

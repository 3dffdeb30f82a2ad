"""The standard modules a job may import, each a proxy of vetted functions and constants.

A proxy is not the module: it holds only the names listed here, chosen one by one (functions,
numbers, rounding names, the exceptions a job may catch, and value classes whose instances
have an attribute allow-list of their own). `itertools` is `iteration.py`: the same
functions as Python generators, since CPython 3.11's C iterators free memory they still use
when re-entered from a job's callback. Nothing in it walks attributes by string, loads
code, or leads back to a module, its globals or the interpreter.
"""

from __future__ import annotations

import collections
import decimal
import fractions
import math
import statistics
from collections.abc import Callable
from types import ModuleType
from typing import Any

from sandbox.jobs import iteration


def _names(module: ModuleType, names: str) -> dict[str, Any]:
    return {name: getattr(module, name) for name in names.split()}


_MATH_CONSTANTS = ("e", "inf", "nan", "pi", "tau")
OFFERED: dict[str, dict[str, Any]] = {
    "math": {
        name: value
        for name, value in vars(math).items()
        if not name.startswith("_") and (name in _MATH_CONSTANTS or callable(value))
    },
    "statistics": _names(
        statistics,
        (
            "NormalDist StatisticsError correlation covariance fmean geometric_mean harmonic_mean "
            "linear_regression mean median median_grouped median_high median_low mode multimode "
            "pstdev pvariance quantiles stdev variance"
        ),
    ),
    "decimal": _names(
        decimal,
        (
            "Decimal DecimalException DivisionByZero InvalidOperation Overflow ROUND_05UP "
            "ROUND_CEILING ROUND_DOWN ROUND_FLOOR ROUND_HALF_DOWN ROUND_HALF_EVEN ROUND_HALF_UP "
            "ROUND_UP"
        ),
    ),
    "fractions": _names(fractions, "Fraction"),
    "itertools": dict(iteration.FUNCTIONS),
    "collections": _names(collections, "Counter OrderedDict defaultdict deque"),
}


class ModuleProxy:
    """What `import name` gives a job: the offered names, read-only, and nothing else."""

    __slots__ = ("_name", "_offered")

    def __init__(self, name: str, offered: dict[str, Any]) -> None:
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_offered", dict(offered))

    def __getattr__(self, name: str) -> Any:
        # Reached only by `from module import name`, which Python resolves without a hook.
        try:
            return self._offered[name]
        except KeyError:
            raise AttributeError("not offered") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError("modules are read-only")

    def __repr__(self) -> str:
        return f"<module {self._name}>"


def offered(proxy: ModuleProxy, name: str) -> tuple[bool, Any]:
    """Whether the proxy offers `name`, and the value if it does."""
    found = proxy._offered.get(name, _MISSING)  # noqa: SLF001 - the proxy's own module
    return found is not _MISSING, found


_MISSING = object()


class ImportRefused(ImportError):
    """A module a job may not import; the message names no path and no module object."""

    def __init__(self) -> None:
        super().__init__("this module is not available to jobs")


def importer() -> Callable[..., ModuleProxy]:
    """A fresh `__import__` for one job: absolute imports of offered modules, as proxies."""
    proxies: dict[str, ModuleProxy] = {}

    def guarded_import(
        name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0
    ) -> ModuleProxy:
        if level != 0 or type(name) is not str or name not in OFFERED:
            raise ImportRefused
        if fromlist and any(type(n) is not str or n not in OFFERED[name] for n in fromlist):
            raise ImportRefused
        if name not in proxies:
            proxies[name] = ModuleProxy(name, OFFERED[name])
        return proxies[name]

    return guarded_import

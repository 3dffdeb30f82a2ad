"""What a job may read from each kind of value: an allow-list of attribute names per exact type.

Every `x.name` in job code goes through `read_attribute`. A name is readable only when it is on
the list for `type(x)` exactly (a subclass inherits nothing), or, for a class the job was
handed, on the list for that class. Nothing that walks attributes by string (`format`,
`format_map`, `Formatter`, `attrgetter`, templates) is on any list, no function, method,
generator, frame, code object or exception has any readable attribute, and a refusal says
nothing about the object it was asked about.
"""

from __future__ import annotations

import collections
import decimal
import fractions
import statistics
from typing import Any

from sandbox.jobs.modules import ModuleProxy, offered
from sandbox.jobs.sets import GROWING, Growing

_NUMBER = frozenset({"real", "imag", "conjugate"})
_INTEGER = _NUMBER | {"numerator", "denominator", "bit_length", "bit_count", "as_integer_ratio"}
_SEQUENCE = frozenset({"count", "index"})
_LIST = _SEQUENCE | {"append", "clear", "copy", "extend", "insert", "pop", "remove", "reverse",
                     "sort"}  # fmt: skip
_DICT = frozenset({"clear", "copy", "get", "items", "keys", "pop", "popitem", "setdefault",
                   "update", "values"})  # fmt: skip
_FROZENSET = frozenset({"copy", "difference", "intersection", "isdisjoint", "issubset",
                        "issuperset", "symmetric_difference", "union"})  # fmt: skip
_SET = _FROZENSET | {"add", "clear", "difference_update", "discard", "intersection_update",
                     "pop", "remove", "symmetric_difference_update", "update"}  # fmt: skip
_STR = frozenset({
    "capitalize", "casefold", "center", "count", "endswith", "expandtabs", "find", "index",
    "isalnum", "isalpha", "isascii", "isdecimal", "isdigit", "isidentifier", "islower",
    "isnumeric", "isprintable", "isspace", "istitle", "isupper", "join", "ljust", "lower",
    "lstrip", "partition", "removeprefix", "removesuffix", "replace", "rfind", "rindex", "rjust",
    "rpartition", "rsplit", "rstrip", "split", "splitlines", "startswith", "strip", "swapcase",
    "title", "upper", "zfill",
})  # fmt: skip
_DECIMAL = _NUMBER | {
    "adjusted", "as_integer_ratio", "compare", "copy_abs", "copy_negate", "copy_sign", "exp",
    "fma", "is_finite", "is_infinite", "is_nan", "is_signed", "is_zero", "ln", "log10",
    "max", "min", "normalize", "quantize", "sqrt", "to_integral_value",
}  # fmt: skip

ATTRIBUTES: dict[type, frozenset[str]] = {
    bool: _INTEGER,
    int: _INTEGER,
    float: _NUMBER | {"as_integer_ratio", "is_integer", "hex"},
    complex: _NUMBER,
    str: _STR,
    list: _LIST,
    tuple: _SEQUENCE,
    range: _SEQUENCE | {"start", "stop", "step"},
    slice: frozenset({"start", "stop", "step"}),
    dict: _DICT,
    set: _SET,
    frozenset: _FROZENSET,
    decimal.Decimal: _DECIMAL,
    fractions.Fraction: _INTEGER | {"limit_denominator", "is_integer"},
    collections.Counter: _DICT | {"elements", "most_common", "subtract", "total"},
    collections.OrderedDict: _DICT | {"move_to_end"},
    collections.defaultdict: _DICT,
    collections.deque: _LIST - {"sort"}
    | {"appendleft", "extendleft", "maxlen", "popleft", "rotate"},
    statistics.NormalDist: frozenset(
        {
            "mean",
            "median",
            "mode",
            "stdev",
            "variance",
            "pdf",
            "cdf",
            "inv_cdf",
            "quantiles",
            "overlap",
            "zscore",
        }
    ),  # fmt: skip
    statistics.LinearRegression: frozenset({"slope", "intercept"}),
}

# Classes a job holds (from builtins or a module proxy) answer only these names.
CLASS_ATTRIBUTES: dict[type, frozenset[str]] = {
    int: frozenset({"from_bytes"}),
    float: frozenset({"fromhex"}),
    dict: frozenset({"fromkeys"}),
    decimal.Decimal: frozenset({"from_float"}),
    fractions.Fraction: frozenset({"from_float", "from_decimal"}),
    statistics.NormalDist: frozenset({"from_samples"}),
}


class AttributeRefused(AttributeError):
    """An attribute a job may not read; it carries no object and no name."""

    def __init__(self) -> None:
        super().__init__("this attribute is not available to jobs")


def read_attribute(value: Any, name: str) -> Any:
    """The `_getattr_` hook: `value.name` if the allow-list has it, else AttributeRefused."""
    if type(name) is not str:
        raise AttributeRefused
    if type(value) is ModuleProxy:
        found, attribute = offered(value, name)
        if not found:
            raise AttributeRefused
        return attribute
    names = (
        CLASS_ATTRIBUTES.get(value, ())
        if isinstance(value, type)
        else ATTRIBUTES.get(type(value), ())
    )
    if name not in names:
        raise AttributeRefused
    if (type(value), name) in GROWING:
        return Growing(value, name)
    try:
        return getattr(value, name)
    except AttributeError:  # a name this Python lacks: its error would carry `value`
        raise AttributeRefused from None

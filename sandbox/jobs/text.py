"""How a job turns values into text: plain values as Python writes them, anything else as one
fixed placeholder, so no address, host class name or path ever becomes text a job holds.

An address is what turns a memory bug in the interpreter into an escape (a red-team round
read them from `repr(int.from_bytes)` and `repr(sql)`), so every way a job makes text goes
through here: `str`, `repr`, f-string fields and `%` formatting.
"""

from __future__ import annotations

import collections
import decimal
import fractions
from collections.abc import Mapping
from typing import Any

OPAQUE = "<object>"
SCALARS = (type(None), bool, int, float, complex, str, bytes, decimal.Decimal,
           fractions.Fraction)  # fmt: skip
CONTAINERS = (list, tuple, set, frozenset, collections.deque)
MAPPINGS = (dict, collections.Counter, collections.OrderedDict, collections.defaultdict)


def is_plain(value: Any) -> bool:
    """Whether `value` and everything it contains print without naming anything of the host."""
    pending, seen = [value], set()
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind in SCALARS or kind is range:
            continue
        if id(item) in seen:
            continue  # a container that holds itself prints as [...]
        seen.add(id(item))
        if kind in CONTAINERS:
            pending.extend(item)
        elif kind in MAPPINGS and (kind is not collections.defaultdict or _plain_factory(item)):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, BaseException):
            # Prints its type's name and its arguments (an OSError its file names too); a
            # caught one has none, or a code.
            pending.extend(item.args)
            if isinstance(item, OSError):
                pending.extend((item.filename, item.filename2))
        else:
            return False
    return True


def _plain_factory(mapping: collections.defaultdict) -> bool:
    # A defaultdict prints its default factory: a builtin type is fine, a function is not.
    return mapping.default_factory is None or mapping.default_factory in (list, dict, set, int)


def shown(value: Any) -> Any:
    """The value itself when it is plain, else the placeholder (for f-string fields)."""
    return value if is_plain(value) else OPAQUE


def text_repr(value: Any) -> str:
    """`repr` for jobs."""
    return repr(value) if is_plain(value) else OPAQUE


def text_str(value: Any = "") -> str:
    return str(value) if is_plain(value) else OPAQUE


class _TextType(type):
    """A stand-in for `str` in a job's builtins: `isinstance(x, str)` works, `str(x)` is safe."""

    def __instancecheck__(cls, value: Any) -> bool:
        return isinstance(value, str)

    def __subclasscheck__(cls, subclass: type) -> bool:
        return issubclass(subclass, str)

    def __call__(cls, value: Any = "") -> str:  # type: ignore[override]
        return text_str(value)


class Text(metaclass=_TextType):
    """What a job calls `str`."""


def formatted(template: Any, values: Any) -> Any:
    """`template % values`, with every value (and mapping key) made plain first when the
    template is text or bytes, whose `%a` and `%r` would print any object."""
    if not isinstance(template, str | bytes):
        return template % values
    if type(values) is tuple:
        return template % tuple(shown(value) for value in values)
    if isinstance(values, Mapping):
        return template % {shown(key): shown(value) for key, value in values.items()}
    return template % shown(values)

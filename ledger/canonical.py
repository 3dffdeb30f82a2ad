"""Canonical JSON (RFC 8785 style): the exact text that is hashed into the log."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

# Exact types json.dumps already writes canonically; floats and subclasses take the long way.
_PLAIN_SCALARS = frozenset({str, int, bool, type(None)})


def canonical_json(obj: Any) -> str:
    """Serialise `obj` to its one canonical text.

    Object keys are sorted by UTF-16 code units (as RFC 8785 says), there is no whitespace,
    non-ASCII text stays UTF-8, and NaN, infinity, lone surrogates and non-string keys are
    rejected. Integers are written exactly (money is always integer minor units); finite floats
    use the ECMAScript shortest form, so `1.0` is `1` and `1e21` is `1e+21`. Tuples are arrays.
    Raises TypeError or ValueError on anything else.
    """
    if _plain(obj):
        # The common case, in C: for these values sorted compact json.dumps is the same text.
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        if not text.isascii():
            text.encode("utf-8")  # raises on lone surrogates, which have no UTF-8 form
        return text
    try:
        return _canonical(obj)
    except RecursionError as error:
        raise ValueError("the value is nested too deeply or refers to itself") from error


def _plain(obj: Any) -> bool:
    """True when `obj` holds only exact JSON types, no floats, and ASCII keys (whose code
    point order is their UTF-16 order), each container once (so no cycles)."""
    seen: set[int] = set()
    stack = [obj]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict or kind is list or kind is tuple:
            if id(item) in seen:
                return False
            seen.add(id(item))
            if kind is dict:
                if not all(type(key) is str and key.isascii() for key in item):
                    return False
                stack.extend(item.values())
            else:
                stack.extend(item)
        elif kind not in _PLAIN_SCALARS:
            return False
    return True


def _canonical(obj: Any) -> str:
    if obj is None:
        return "null"
    if isinstance(obj, bool):
        return "true" if obj else "false"
    if isinstance(obj, int):
        return str(int(obj))
    if isinstance(obj, float):
        return _es_number(obj)
    if isinstance(obj, str):
        return _string(obj)
    if isinstance(obj, list | tuple):
        return "[" + ",".join(_canonical(item) for item in obj) + "]"
    if isinstance(obj, dict):
        for key in obj:
            if not isinstance(key, str):
                raise TypeError(f"object keys must be strings, not {type(key).__name__}")
        keys = sorted(obj, key=lambda k: k.encode("utf-16-be", "surrogatepass"))
        members = (f"{_string(key)}:{_canonical(obj[key])}" for key in keys)
        return "{" + ",".join(members) + "}"
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def _string(text: str) -> str:
    text.encode("utf-8")  # raises on lone surrogates, which have no UTF-8 form
    return json.dumps(text, ensure_ascii=False)


def _es_number(value: float) -> str:
    """ECMAScript Number::toString, which RFC 8785 prescribes for numbers."""
    if not math.isfinite(value):
        raise ValueError("NaN and infinity are not valid JSON")
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    # repr gives the shortest digits that round-trip, as ECMAScript requires.
    parts = Decimal(repr(abs(value))).normalize().as_tuple()
    digits = "".join(str(d) for d in parts.digits)
    k = len(digits)
    n = k + int(parts.exponent)
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = f"{digits[:n]}.{digits[n:]}"
    elif -6 < n <= 0:
        text = "0." + "0" * -n + digits
    else:
        mantissa = digits if k == 1 else f"{digits[0]}.{digits[1:]}"
        text = f"{mantissa}e{'+' if n > 0 else '-'}{abs(n - 1)}"
    return sign + text

"""Canonical JSON (RFC 8785 style): the exact text that is hashed into the log."""

from __future__ import annotations

import json
import math
import secrets
from decimal import Decimal
from typing import Any

# Exact types json.dumps already writes canonically; floats are checked one by one.
_PLAIN_SCALARS = frozenset({str, int, bool, type(None)})
# From here up, repr (which json.dumps uses) writes a float's shortest digits in fixed notation,
# as ECMAScript does, integral floats aside ("1.0" where ECMAScript writes "1").
_FIXED_FROM = 1e-4
# Up to here repr writes fixed notation too (from 1e16 it writes an exponent).
_FIXED_BELOW = 1e16
# Integral floats below this are exact integers, whose digits ECMAScript writes in full.
_EXACT_BELOW = 2.0**53
_NOT_PLAIN = object()


def canonical_json(obj: Any) -> str:
    """Serialise `obj` to its one canonical text.

    Object keys are sorted by UTF-16 code units (as RFC 8785 says), there is no whitespace,
    non-ASCII text stays UTF-8, and NaN, infinity, lone surrogates and non-string keys are
    rejected. Integers are written exactly (money is always integer minor units); finite floats
    use the ECMAScript shortest form, so `1.0` is `1` and `1e21` is `1e+21`. Tuples are arrays.
    Raises TypeError or ValueError on anything else.
    """
    try:
        plain = _plain(obj)
        if plain is _NOT_PLAIN:
            return _canonical(obj)
        value, numbers = plain
        # The common case, in C: for these values sorted compact json.dumps is the same text.
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        if not text.isascii():
            text.encode("utf-8")  # raises on lone surrogates, which have no UTF-8 form
        for placeholder, number in numbers.items():
            text = text.replace(json.dumps(placeholder), number)
        return text
    except RecursionError as error:
        raise ValueError("the value is nested too deeply or refers to itself") from error


def _plain(obj: Any) -> tuple[Any, dict[str, str]] | object:
    """`obj` in a form json.dumps writes canonically, with the floats it would write otherwise
    as placeholders (by placeholder, the float's text), or _NOT_PLAIN. That takes exact JSON
    types only, finite floats, ASCII keys (whose code point order is their UTF-16 order), and
    each container once (no cycles)."""
    seen: set[int] = set()
    stack = [obj]
    odd = False
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict or kind is list or kind is tuple:
            if id(item) in seen:
                return _NOT_PLAIN
            seen.add(id(item))
            if kind is dict:
                if not all(type(key) is str for key in item) or not "".join(item).isascii():
                    return _NOT_PLAIN
                values: Any = item.values()
            else:
                values = item
        else:
            values = (item,)
        for value in values:
            kind = type(value)
            if kind in _PLAIN_SCALARS:
                continue
            if kind is dict or kind is list or kind is tuple:
                stack.append(value)
            elif kind is float and math.isfinite(value):
                odd = odd or not _written_alike(value)
            else:
                return _NOT_PLAIN
    if not odd:
        return obj, {}
    numbers: dict[str, str] = {}
    # Unguessable, so no string in the value can pass for one.
    nonce = secrets.token_hex(16)
    return _with_placeholders(obj, nonce, numbers), numbers


def _written_alike(value: float) -> bool:
    """Whether json.dumps (repr) writes the finite `value` as ECMAScript does."""
    return not value.is_integer() and _FIXED_FROM <= abs(value) < _FIXED_BELOW


def _with_placeholders(value: Any, nonce: str, numbers: dict[str, str]) -> Any:
    """A copy of a plain value with each integral float below 2**53 an int (-0.0 becomes 0, as
    in JSON), and each float json.dumps would write unlike ECMAScript a placeholder string."""
    kind = type(value)
    if kind is float:
        if value.is_integer() and abs(value) < _EXACT_BELOW:
            return int(value)
        if _written_alike(value):
            return value
        placeholder = f"\x00{nonce}:{len(numbers)}\x00"
        numbers[placeholder] = _es_number(value)
        return placeholder
    if kind is dict:
        return {key: _with_placeholders(item, nonce, numbers) for key, item in value.items()}
    if kind is list or kind is tuple:
        return [_with_placeholders(item, nonce, numbers) for item in value]
    return value


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

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import canonical_json
from ledger.canonical import _canonical


def test_sorted_compact_utf8() -> None:
    text = canonical_json({"b": [1, True, None], "a": {"z": "é", "y": "\n"}, "€": 0})
    assert text == '{"a":{"y":"\\n","z":"é"},"b":[1,true,null],"€":0}'


def test_keys_sort_by_utf16_code_units() -> None:
    # U+1F600 is a surrogate pair (D83D ...) in UTF-16, so it sorts before U+FFFD.
    assert canonical_json({"\ufffd": 1, "\U0001f600": 2}) == '{"😀":2,"\ufffd":1}'


@pytest.mark.parametrize(
    ("value", "text"),
    [(1.0, "1"), (0.1, "0.1"), (-0.0, "0"), (1e21, "1e+21"), (1e20, "100000000000000000000"),
     (1e-7, "1e-7"), (0.000001, "0.000001"), (123.456, "123.456"), (2**60, "1152921504606846976")],
)  # fmt: skip
def test_numbers(value: float, text: str) -> None:
    assert canonical_json(value) == text


@pytest.mark.parametrize("bad", [math.nan, math.inf, {1: "x"}, b"raw", "\ud800", {1.5}])
def test_rejects(bad: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        canonical_json(bad)


def test_circular_values_are_rejected() -> None:
    looped: list = []
    looped.append(looped)
    with pytest.raises(ValueError):
        canonical_json({"a": looped})


def test_shared_containers_are_written_each_time() -> None:
    shared = {"b": 1.5}
    assert canonical_json([shared, shared]) == '[{"b":1.5},{"b":1.5}]'


# Every JSON value, including floats, non-ASCII and astral keys, and tuples.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=3000, deadline=None)
@given(json_values)
def test_fast_path_writes_the_same_text_as_the_reference(value: object) -> None:
    # _canonical is the RFC 8785 writer; canonical_json hands plain values to json.dumps.
    assert canonical_json(value) == _canonical(value)


@settings(max_examples=1000, deadline=None)
@given(json_values)
def test_canonical_text_parses_back_to_the_value(value: object) -> None:
    def same(parsed: object, original: object) -> bool:
        if isinstance(original, list | tuple):
            return (
                isinstance(parsed, list)
                and len(parsed) == len(original)
                and all(same(a, b) for a, b in zip(parsed, original, strict=True))
            )
        if isinstance(original, dict):
            return (
                isinstance(parsed, dict)
                and parsed.keys() == original.keys()
                and all(same(parsed[key], part) for key, part in original.items())
            )
        if isinstance(original, float):
            # ECMAScript writes integral doubles without a fraction; as a double it round-trips.
            return isinstance(parsed, int | float) and float(parsed) == original
        return type(parsed) is type(original) and parsed == original

    assert same(json.loads(canonical_json(value)), value)


# Floats around where repr's notation and ECMAScript's part: 1e-6 and 1e-4 (exponents below),
# 2**53 (integral doubles stop being exact integers), 1e16 and 1e21; and integral floats.
edge_floats = st.sampled_from([1e-6, 1e-4, 2.0**53, 1e16, 1e21]).flatmap(
    lambda edge: st.floats(min_value=edge / 4, max_value=edge * 4)
) | st.integers(-(2**55), 2**55).map(float)


@settings(max_examples=1000, deadline=None)
@given(edge_floats, st.booleans())
def test_floats_where_notations_change_are_written_as_the_reference(
    value: float, negative: bool
) -> None:
    value = -value if negative else value
    assert canonical_json({"x": [value, 1]}) == _canonical({"x": [value, 1]})


def test_text_shaped_like_a_placeholder_stays_text() -> None:
    """Floats json.dumps writes unlike ECMAScript go through placeholders; a string that looks
    like one (whatever its nonce) is written as the string it is."""
    value = {"delta": 1e-7, "sql": "\x000123456789abcdef0123456789abcdef:0\x00", "n": 2.0}
    assert canonical_json(value) == _canonical(value)
    assert json.loads(canonical_json(value))["sql"] == value["sql"]

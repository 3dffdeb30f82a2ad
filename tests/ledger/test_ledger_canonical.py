import math

import pytest

from ledger import canonical_json


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

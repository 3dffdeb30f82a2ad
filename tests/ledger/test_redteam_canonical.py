"""Red team of canonical JSON's fast path: floats json.dumps writes unlike ECMAScript go through
placeholder strings, and no text in the value, however shaped like one, may be taken for one,
shift one, or make two different values one text."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import canonical_json
from ledger.canonical import _canonical

# Floats each written through a placeholder: exponent forms, tiny and huge, integral above 2**53.
ODD_FLOATS = [1e-7, -2.5e-5, 1e16 + 2, 1e21, 5e-324, 1.7976931348623157e308, 2.0**53 + 2]


def test_more_placeholders_than_one_digit_keep_their_own_numbers() -> None:
    """Placeholder 1 is a prefix of placeholder 10 but for its closing NUL: each is replaced by
    its own float."""
    value = {"xs": [float(f"{n + 1}e-9") for n in range(25)], "s": ODD_FLOATS}
    assert canonical_json(value) == _canonical(value)


def test_text_holding_a_placeholders_json_form_stays_text() -> None:
    """Strings and keys that spell a placeholder's escaped form, after a quote or a backslash,
    are escaped again; nothing in them is replaced."""
    nonce = "0123456789abcdef" * 2
    shaped = [
        f"\x00{nonce}:0\x00",
        f'"\x00{nonce}:0\x00',
        f'\\"\x00{nonce}:1\x00"',
        f'"\\u0000{nonce}:0\\u0000"',
        "\\u0000",
    ]
    value = {"delta": ODD_FLOATS, "text": shaped, **{f"k{i}\x00": s for i, s in enumerate(shaped)}}
    text = canonical_json(value)
    assert text == _canonical(value)
    assert json.loads(text)["text"] == shaped


def test_a_float_and_the_text_of_its_number_are_two_texts() -> None:
    for number in ODD_FLOATS:
        written = _canonical(number)
        assert canonical_json({"x": number}) != canonical_json({"x": written})
        assert canonical_json([number, written]) == f'[{written},"{written}"]'


# Text drawn from what placeholders and their JSON escapes are made of.
shaped_text = st.text(alphabet='\x00"\\:u0123456789abcdef', max_size=48)
odd_floats = st.sampled_from(ODD_FLOATS) | st.floats(allow_nan=False, allow_infinity=False).filter(
    lambda x: not 1e-4 <= abs(x) < 1e16 or x.is_integer()
)
values = st.recursive(
    shaped_text | odd_floats | st.integers() | st.booleans() | st.none(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(shaped_text, inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=2000, deadline=None)
@given(values)
def test_placeholder_shaped_values_are_written_as_the_reference_writes_them(value: object) -> None:
    assert canonical_json(value) == _canonical(value)


@settings(max_examples=1000, deadline=None)
@given(values, values)
def test_two_values_share_a_text_only_when_the_reference_gives_them_one(
    first: object, second: object
) -> None:
    """The fast path adds no collision of its own: two values it writes alike, the RFC 8785
    writer writes alike too."""
    assert (canonical_json(first) == canonical_json(second)) == (
        _canonical(first) == _canonical(second)
    )

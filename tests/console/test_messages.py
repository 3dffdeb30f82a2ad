"""Every English string the console shows has its Chinese translation in the catalogue."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from console.pages.catalogue import USES

CONSOLE = Path(__file__).resolve().parents[2] / "console"
METHODS = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}


def _catalogue() -> dict[str, str]:
    with (CONSOLE / "locales" / "zh.po").open("rb") as source:
        return {message.id: message.string for message in read_po(source) if message.id}


def test_every_template_string_is_translated() -> None:
    written = {
        message[2] if isinstance(message[2], str) else message[2][0]
        for message in extract_from_dir(CONSOLE, METHODS, OPTIONS)
    }
    translated = _catalogue()
    assert len(written) > 50
    missing = sorted(text for text in written if not translated.get(text))
    assert missing == []


def test_words_from_code_are_translated_too() -> None:
    """Column uses, statuses and purposes are looked up at run time, not written in templates."""
    translated = _catalogue()
    words = [*USES.values(), "active", "pending", "rejected", "revoked", "suspended", "expired",
             "requested", "approved", "activated", "public_welfare", "commercial_pricing"]  # fmt: skip
    assert [word for word in words if not translated.get(word)] == []

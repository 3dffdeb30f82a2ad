"""The console's languages: English source strings, and Simplified Chinese from its message
catalogue (`locales/zh.po`), compiled by Babel when the console loads."""

from __future__ import annotations

import gettext
import io
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALES = Path(__file__).parent / "locales"
LANGUAGES = {"en": "English", "zh": "中文"}
DEFAULT = "en"


@cache
def translations(language: str) -> gettext.NullTranslations:
    """The catalogue for a language; English is the source text itself."""
    if language == DEFAULT:
        return gettext.NullTranslations()
    with (LOCALES / f"{language}.po").open("rb") as source:
        catalogue = read_po(source, locale="zh_Hans_CN")
    compiled = io.BytesIO()
    write_mo(compiled, catalogue)
    compiled.seek(0)
    return Translations(compiled)


def chosen(cookie: str | None, accept_language: str | None) -> str:
    """The visitor's language: its choice, else the first its browser accepts, else English."""
    if cookie in LANGUAGES:
        return cookie
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return DEFAULT

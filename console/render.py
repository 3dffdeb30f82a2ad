"""Pages from templates: one Jinja environment per language, escaping everything by default."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from console.i18n import LANGUAGES, translations
from console.refusals import Refusal, explain
from console.visitors import Visitor
from console.visitors import language as chosen_language

TEMPLATES = Path(__file__).parent / "templates"


def shown_number(value: object) -> str:
    """Numbers as a table shows them: whole numbers whole, others to two decimals."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "—" if value is None else str(value)
    if isinstance(value, int) or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.2f}" if abs(value) >= 0.01 else f"{value:.3g}"


@cache
def environment(language: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"], default=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    catalogue = translations(language)
    env.install_gettext_translations(catalogue, newstyle=True)  # type: ignore[attr-defined]
    # Text not written in a template (a refusal's words) is looked up but never trusted:
    # `_()` marks its result safe, this returns plain text, which is escaped like any other.
    env.filters["said"] = lambda text: catalogue.gettext(str(text))
    env.filters["number"] = shown_number
    return env


def page(
    request: Request,
    template: str,
    visitor: Visitor | None,
    status: int = 200,
    **context: object,
) -> HTMLResponse:
    language = visitor.language if visitor else chosen_language(request)
    html = environment(language).get_template(template).render(
        visitor=visitor, language=language, languages=LANGUAGES, path=request.url.path,
        **context,
    )  # fmt: skip
    return HTMLResponse(html, status_code=status)


def refused(request: Request, visitor: Visitor | None, why: Exception | Refusal) -> HTMLResponse:
    """A page saying why the request was refused, with the refusal's status."""
    refusal = why if isinstance(why, Refusal) else explain(why)
    return page(request, "refused.html", visitor, refusal.status, refusal=refusal)


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    y: int
    width: float


def bar_chart(labels: list[str], values: list[float], width: int = 560) -> list[Bar]:
    """Horizontal bars for one measure by one dimension, drawn by the template as SVG."""
    top = max((abs(v) for v in values), default=0) or 1
    return [
        Bar(label, value, 28 * index, max(1.0, abs(value) / top * width))
        for index, (label, value) in enumerate(zip(labels, values, strict=True))
    ]

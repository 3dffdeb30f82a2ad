"""The public disclosure report, readable without signing in."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import Response

from console.render import page
from console.security import SESSION_COOKIE
from console.visitors import Veil, Visitor, language
from services.disclosure import disclosure_report

router = APIRouter(prefix="/console")

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


@router.get("/disclosure")
def disclosure(request: Request, veil: Veil, period: str | None = None) -> Response:
    if period is not None and not MONTH.fullmatch(period):
        period = None
    report = disclosure_report(veil, period=period)
    visitor = _signed_in(request, veil)
    return page(request, "disclosure.html", visitor, report=report)


def _signed_in(request: Request, veil: Veil) -> Visitor | None:
    """The page is public; a signed-in reader still sees its own header."""
    token = request.cookies.get(SESSION_COOKIE)
    session = veil.control.session(token) if token else None
    if token is None or session is None:
        return None
    return Visitor(session.principal, token, session.csrf, language(request))

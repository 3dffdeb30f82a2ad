"""Who is looking: the signed-in principal behind a session cookie, with its CSRF token and
language; a visitor without a live session is sent to sign in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Form, Request

from console.i18n import chosen
from console.refusals import REFUSED
from console.security import LANGUAGE_COOKIE, SESSION_COOKIE, same, same_origin
from governance import Principal
from services.authorisation import authorise
from services.runtime import Services


class SignInRequired(Exception):
    """No live session: the visitor signs in, then comes back."""


class CsrfRefused(Exception):
    """A form posted without this session's CSRF token."""


class StandingRefused(Exception):
    """The principal may not read the catalogue now (suspended, say): no page built from it."""

    def __init__(self, visitor: Visitor, cause: Exception) -> None:
        super().__init__("refused")
        self.visitor, self.cause = visitor, cause


@dataclass(frozen=True)
class Visitor:
    principal: Principal
    token: str
    csrf: str
    language: str


def services(request: Request) -> Services:
    return request.app.state.services


def language(request: Request) -> str:
    return chosen(request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language"))


def visitor(request: Request) -> Visitor:
    token = request.cookies.get(SESSION_COOKIE)
    session = services(request).control.session(token) if token else None
    if token is None or session is None:
        raise SignInRequired
    return Visitor(session.principal, token, session.csrf, language(request))


def posted_by(
    request: Request,
    visitor: Annotated[Visitor, Depends(visitor)],
    csrf: Annotated[str, Form()] = "",
) -> Visitor:
    """A signed-in visitor whose form carries its session's CSRF token."""
    if not same(csrf, visitor.csrf) or not same_origin(request):
        raise CsrfRefused
    return visitor


def in_standing(veil: Services, visitor: Visitor) -> None:
    """Raise StandingRefused unless the policy lets this principal read the catalogue now:
    what forms offer (assets, purposes, grants) and answers kept are shown only then."""
    try:
        authorise(veil, caller=visitor.principal, scope="catalog:read", resource={})
    except REFUSED as exc:
        raise StandingRefused(visitor, exc) from exc


def standing_viewer(request: Request, viewer: Annotated[Visitor, Depends(visitor)]) -> Visitor:
    in_standing(services(request), viewer)
    return viewer


Veil = Annotated[Services, Depends(services)]
Viewer = Annotated[Visitor, Depends(visitor)]
Poster = Annotated[Visitor, Depends(posted_by)]
# A signed-in visitor the policy lets read the catalogue now.
Standing = Annotated[Visitor, Depends(standing_viewer)]

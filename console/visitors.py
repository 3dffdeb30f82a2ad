"""Who is looking: the signed-in principal behind a session cookie, with its CSRF token and
language; a visitor without a live session is sent to sign in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Form, Request

from console.i18n import chosen
from console.security import LANGUAGE_COOKIE, SESSION_COOKIE, same
from governance import Principal
from services.runtime import Services


class SignInRequired(Exception):
    """No live session: the visitor signs in, then comes back."""


class CsrfRefused(Exception):
    """A form posted without this session's CSRF token."""


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
    visitor: Annotated[Visitor, Depends(visitor)], csrf: Annotated[str, Form()] = ""
) -> Visitor:
    """A signed-in visitor whose form carries its session's CSRF token."""
    if not same(csrf, visitor.csrf):
        raise CsrfRefused
    return visitor


Veil = Annotated[Services, Depends(services)]
Viewer = Annotated[Visitor, Depends(visitor)]
Poster = Annotated[Visitor, Depends(posted_by)]

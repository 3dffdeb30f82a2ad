"""Signing in with an API key (turned into a server-side session), signing out, and the
language the console speaks."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from console.i18n import LANGUAGES
from console.pages.registration import forget_uploads
from console.render import page
from console.security import (
    LANGUAGE_COOKIE,
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    forget_cookie,
    new_token,
    same,
    same_origin,
    set_cookie,
)
from console.visitors import Poster, Veil

router = APIRouter()

SESSION = timedelta(hours=8)
MAX_KEY_CHARS = 200


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/console", status_code=303)


@router.get("/console/sign-in")
def sign_in_form(request: Request) -> Response:
    """The form carries a token its cookie repeats, so no other site can sign a browser in."""
    token = new_token()
    response = page(request, "sign_in.html", None, sign_in_token=token)
    set_cookie(request, response, SIGN_IN_COOKIE, token, max_age=600)
    return response


@router.post("/console/sign-in")
def sign_in(
    request: Request,
    veil: Veil,
    api_key: Annotated[str, Form(max_length=MAX_KEY_CHARS)] = "",
    sign_in_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    forged = not same(sign_in_token, request.cookies.get(SIGN_IN_COOKIE, ""))
    if forged or not sign_in_token or not same_origin(request):
        return _sign_in_again(request, "the form expired; sign in again", 403)
    veil.control.forget_expired_sessions()
    opened = veil.control.open_session(api_key.strip(), SESSION) if api_key.strip() else None
    if opened is None:
        return _sign_in_again(request, "the API key is not valid", 401)
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        veil.control.close_session(old)  # a session made before sign-in is never reused
    token, _ = opened
    response = RedirectResponse("/console", status_code=303)
    set_cookie(request, response, SESSION_COOKIE, token, max_age=int(SESSION.total_seconds()))
    forget_cookie(request, response, SIGN_IN_COOKIE)
    return response


@router.post("/console/sign-out")
def sign_out(request: Request, visitor: Poster, veil: Veil) -> Response:
    veil.control.close_session(visitor.token)
    forget_uploads(veil, visitor)
    response = RedirectResponse("/console/sign-in", status_code=303)
    forget_cookie(request, response, SESSION_COOKIE)
    return response


@router.get("/console/language/{language}")
def choose_language(language: str, request: Request) -> Response:
    """Switch language and come back; only a path on this site is a place to come back to."""
    back = request.query_params.get("back", "/console")
    if not back.startswith("/console") or back.startswith("//"):
        back = "/console"
    response = RedirectResponse(back, status_code=303)
    if language in LANGUAGES:
        set_cookie(request, response, LANGUAGE_COOKIE, language, max_age=365 * 24 * 3600)
    return response


def _sign_in_again(request: Request, message: str, status: int) -> Response:
    token = new_token()
    response = page(request, "sign_in.html", None, status, sign_in_token=token, error=message)
    set_cookie(request, response, SIGN_IN_COOKIE, token, max_age=600)
    return response

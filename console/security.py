"""What guards every console response: a strict Content-Security-Policy and its companions,
the session cookie's attributes, and CSRF tokens compared in constant time."""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SESSION_COOKIE = "veil_session"
SIGN_IN_COOKIE = "veil_sign_in"
LANGUAGE_COOKIE = "veil_lang"
CONSOLE = "/console"

# No inline script or style, nothing from another origin, never framed.
POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)
HEADERS = {
    b"content-security-policy": POLICY.encode(),
    b"x-content-type-options": b"nosniff",
    b"x-frame-options": b"DENY",
    b"referrer-policy": b"same-origin",
    b"cross-origin-opener-policy": b"same-origin",
}


class ConsoleHeaders:
    """Adds the console's headers to every response under /console (and the redirect at /);
    pages are never cached, since each shows one principal's view."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == "/" or path.startswith(CONSOLE)):
            await self.app(scope, receive, send)
            return
        static = path.startswith(CONSOLE + "/static/")

        async def guarded(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k not in HEADERS]
                headers += list(HEADERS.items())
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, guarded)


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    """HttpOnly, SameSite=Strict, Secure under TLS, for the console's paths only."""
    response.set_cookie(
        name, value, max_age=max_age, path=CONSOLE, httponly=True, samesite="strict",
        secure=_secure(request),
    )  # fmt: skip


def forget_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(
        name, path=CONSOLE, httponly=True, samesite="strict", secure=_secure(request)
    )


def same_origin(request: Request) -> bool:
    """Whether a form was sent from this site: browsers say so in Origin and Sec-Fetch-Site;
    a request that says neither (an HTTP client) is judged by its tokens alone."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    return origin is None or origin == f"{request.url.scheme}://{request.url.netloc}"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def same(sent: str | None, expected: str) -> bool:
    return sent is not None and hmac.compare_digest(sent.encode(), expected.encode())


def _secure(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "")
    return request.url.scheme == "https" or forwarded == "https"

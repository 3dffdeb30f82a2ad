"""Request gate before any body is read: a valid key (or a live console session) must come
with it, and bodies stay small."""

from __future__ import annotations

import json
import re

from anyio import to_thread
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from console.security import CONSOLE, SESSION_COOKIE, SIGN_IN_COOKIE
from gateway.auth import MAX_KEY_CHARS, authenticate
from gateway.errors import error_body
from services.runtime import Services

BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
JSON_BODY_LIMIT = 1024 * 1024
# Routes that take a data file: the API's registration and new versions, and the console's.
UPLOAD = re.compile(r"^(/v1/assets(/[^/]+/versions)?|/console/assets/new)$")
SIGN_IN = CONSOLE + "/sign-in"


class RequestGate:
    """Refuse, without reading them, bodies sent with no valid API key or console session, or
    larger than the route takes.

    FastAPI reads a body before dependencies authenticate, so without this an anonymous client
    could make the server buffer any amount: a key is checked here (and again by the route),
    not merely looked for. Chunked bodies are counted as they arrive.
    """

    def __init__(self, app: ASGIApp, max_upload_bytes: int) -> None:
        self.app = app
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        path = scope["path"]
        if b"authorization" not in headers and not path.startswith(CONSOLE + "/"):
            message = "send an API key as 'Authorization: Bearer <key>'"
            await _reply(send, 401, "UNAUTHENTICATED", message, bearer=True)
            return
        if not await to_thread.run_sync(_admitted, scope["app"].state.services, scope, headers):
            if path.startswith(CONSOLE + "/"):
                await _sign_in_first(send)
                return
            await _reply(send, 401, "UNAUTHENTICATED", "the API key is not valid", bearer=True)
            return
        limit = self.max_upload_bytes if UPLOAD.match(path) else JSON_BODY_LIMIT
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit() or int(declared) > limit:
                await _reply(send, 413, "PAYLOAD_TOO_LARGE", f"this route takes {limit} bytes")
                return
            await self.app(scope, receive, send)
            return
        buffered = await _read_up_to(receive, limit)
        if buffered is None:
            await _reply(send, 413, "PAYLOAD_TOO_LARGE", f"this route takes {limit} bytes")
            return
        await self.app(scope, _replay(buffered, receive), send)


def _admitted(veil: Services, scope: Scope, headers: dict[bytes, bytes]) -> bool:
    """A key that authenticates (its principal kept for the route), a live console session, or
    (for the sign-in form alone, whose body is small) the sign-in form's cookie."""
    if b"authorization" in headers:
        scheme, _, token = headers[b"authorization"].decode("latin-1").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > MAX_KEY_CHARS:
            return False
        found = authenticate(veil, scope, token)
        return found is not None and found.status != "revoked"
    cookies = cookie_parser(headers.get(b"cookie", b"").decode("latin-1"))
    if scope["path"] == SIGN_IN:
        return bool(cookies.get(SIGN_IN_COOKIE))
    session = cookies.get(SESSION_COOKIE)
    return bool(session) and veil.control.session(session) is not None


async def _read_up_to(receive: Receive, limit: int) -> list[Message] | None:
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        size += len(message.get("body", b""))
        if size > limit:
            return None
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


async def _sign_in_first(send: Send) -> None:
    headers = [(b"location", f"{CONSOLE}/sign-in".encode()), (b"content-length", b"0")]
    await send({"type": "http.response.start", "status": 303, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


async def _reply(send: Send, status: int, code: str, message: str, bearer: bool = False) -> None:
    headers = [(b"content-type", b"application/json")]
    if bearer:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send(
        {"type": "http.response.body", "body": json.dumps(error_body(code, message)).encode()}
    )

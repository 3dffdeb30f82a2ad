"""Request gate before any body is read: a key (or a console cookie) must be presented, and
bodies stay small."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from console.security import CONSOLE, SESSION_COOKIE, SIGN_IN_COOKIE
from gateway.errors import error_body

BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
JSON_BODY_LIMIT = 1024 * 1024
# Routes that take a data file: the API's and the console's registration.
UPLOAD_PATHS = {"/v1/assets", "/console/assets/new"}


class RequestGate:
    """Refuse, without reading them, bodies sent with no API key or larger than the route takes.

    FastAPI reads a body before dependencies authenticate, so without this an anonymous client
    could make the server buffer any amount. Chunked bodies are counted as they arrive.
    """

    def __init__(self, app: ASGIApp, max_upload_bytes: int) -> None:
        self.app = app
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if not _credentials(scope["path"], headers):
            if scope["path"].startswith(CONSOLE + "/"):
                await _sign_in_first(send)
                return
            message = "send an API key as 'Authorization: Bearer <key>'"
            await _reply(send, 401, "UNAUTHENTICATED", message, bearer=True)
            return
        limit = self.max_upload_bytes if scope["path"] in UPLOAD_PATHS else JSON_BODY_LIMIT
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


def _credentials(path: str, headers: dict[bytes, bytes]) -> bool:
    """An API key, or on the console's paths its session (or sign-in form's) cookie: present,
    not yet checked; the route checks it."""
    if b"authorization" in headers:
        return True
    if not path.startswith(CONSOLE + "/"):
        return False
    cookies = headers.get(b"cookie", b"").decode("latin-1")
    return any(f"{name}=" in cookies for name in (SESSION_COOKIE, SIGN_IN_COOKIE))


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

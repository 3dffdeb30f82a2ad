"""Request gate before any body is read: a key must be presented, and bodies stay small."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import error_body

BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
JSON_BODY_LIMIT = 1024 * 1024
UPLOAD_PATH = "/v1/assets"


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
        if b"authorization" not in headers:
            message = "send an API key as 'Authorization: Bearer <key>'"
            await _reply(send, 401, "UNAUTHENTICATED", message, bearer=True)
            return
        limit = self.max_upload_bytes if scope["path"] == UPLOAD_PATH else JSON_BODY_LIMIT
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


async def _reply(send: Send, status: int, code: str, message: str, bearer: bool = False) -> None:
    headers = [(b"content-type", b"application/json")]
    if bearer:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send(
        {"type": "http.response.body", "body": json.dumps(error_body(code, message)).encode()}
    )

"""Request gate before any body is read: a valid key (or a live console session) must come
with it, and bodies stay small."""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import OrderedDict

from anyio import to_thread
from starlette.requests import cookie_parser
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from console.security import CONSOLE, SESSION_COOKIE, SIGN_IN_COOKIE
from gateway.auth import AUTHENTICATED, MAX_KEY_CHARS, authenticate
from gateway.errors import error_body
from services.runtime import Services

BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
JSON_BODY_LIMIT = 1024 * 1024
# Routes that take a data file: the API's registration and new versions, and the console's.
UPLOAD = re.compile(r"^(/v1/assets(/[^/]+/versions)?|/console/assets/new)$")
SIGN_IN = CONSOLE + "/sign-in"
NO_KEY = "send an API key as 'Authorization: Bearer <key>'"
NOT_VALID = "the API key is not valid"
# How long, and for how many keys, an authenticated key's JSON bodies are read unchecked.
RECENT_KEY_S = 5.0
RECENT_KEYS = 4096


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
        self.recent = RecentKeys()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        path = scope["path"]
        if b"authorization" not in headers and not path.startswith(CONSOLE + "/"):
            await _reply(scope, receive, send, 401, "UNAUTHENTICATED", NO_KEY)
            return
        veil: Services = scope["app"].state.services
        if UPLOAD.match(path) or not self.recent.admits(headers):
            admitted = await to_thread.run_sync(_admitted, veil, scope, headers, self.recent)
        else:
            admitted = True
            send = _checked_late(veil, scope, receive, send, headers, self.recent)
        if not admitted:
            if path.startswith(CONSOLE + "/"):
                await _sign_in_first(send)
                return
            await _reply(scope, receive, send, 401, "UNAUTHENTICATED", NOT_VALID)
            return
        limit = self.max_upload_bytes if UPLOAD.match(path) else JSON_BODY_LIMIT
        declared = headers.get(b"content-length")
        # A chunked body is as long as what arrives, whatever Content-Length also says
        # (Transfer-Encoding wins, RFC 9112 6.3): h11 hands the app both and reads the chunks.
        if declared is not None and b"transfer-encoding" not in headers:
            if not declared.isdigit() or int(declared) > limit:
                await _reply(scope, receive, send, 413, "PAYLOAD_TOO_LARGE", _takes(limit))
                return
            await self.app(scope, receive, send)
            return
        buffered = await _read_up_to(receive, limit)
        if buffered is None:
            await _reply(scope, receive, send, 413, "PAYLOAD_TOO_LARGE", _takes(limit))
            return
        await self.app(scope, _replay(buffered, receive), send)


class RecentKeys:
    """Keys that authenticated in the last few seconds, by digest: a JSON body sent with one
    is read without another look at the control store, and its route authenticates the key
    (the gate reads at most JSON_BODY_LIMIT bytes for a key revoked since; an answer given
    without the route authenticating, such as a body's 422, waits for the key's lookup). A
    data file's route always has its key checked here first."""

    def __init__(self, seconds: float = RECENT_KEY_S, most: int = RECENT_KEYS) -> None:
        self._seconds = seconds
        self._most = most
        self._until: OrderedDict[bytes, float] = OrderedDict()
        self._lock = threading.Lock()

    def admits(self, headers: dict[bytes, bytes]) -> bool:
        header = headers.get(b"authorization")
        if header is None:
            return False
        until = self._until.get(hashlib.sha256(header).digest())
        return until is not None and time.monotonic() < until

    def add(self, header: bytes) -> None:
        digest = hashlib.sha256(header).digest()
        with self._lock:
            self._until[digest] = time.monotonic() + self._seconds
            self._until.move_to_end(digest)
            while len(self._until) > self._most:
                self._until.popitem(last=False)


def _admitted(
    veil: Services, scope: Scope, headers: dict[bytes, bytes], recent: RecentKeys
) -> bool:
    """A key that authenticates (its principal kept for the route), a live console session, or
    (for the sign-in form alone, whose body is small) the sign-in form's cookie."""
    if b"authorization" in headers:
        scheme, _, token = headers[b"authorization"].decode("latin-1").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > MAX_KEY_CHARS:
            return False
        found = authenticate(veil, scope, token)
        if found is None or found.status == "revoked":
            return False
        recent.add(headers[b"authorization"])
        return True
    cookies = cookie_parser(headers.get(b"cookie", b"").decode("latin-1"))
    if scope["path"] == SIGN_IN:
        return bool(cookies.get(SIGN_IN_COOKIE))
    session = cookies.get(SESSION_COOKIE)
    return bool(session) and veil.control.session(session) is not None


def _checked_late(
    veil: Services,
    scope: Scope,
    receive: Receive,
    send: Send,
    headers: dict[bytes, bytes],
    recent: RecentKeys,
) -> Send:
    """`send`, for a request admitted on a recent key: an answer its route gives without
    authenticating the key (a body or header that is not valid, no such route, a redirect)
    is sent only once the key is found valid now, and otherwise refused as the gate refuses
    a key never issued, so nothing tells a key revoked a moment ago from one never valid.
    The lookup is made on those answers alone: a route that authenticated has decided."""
    refused: list[bool] = []

    async def checked(message: Message) -> None:
        if message["type"] == "http.response.start" and not refused:
            authenticated = AUTHENTICATED in scope.get("state", {})
            refused.append(
                not authenticated
                and not await to_thread.run_sync(_admitted, veil, scope, headers, recent)
            )
            if refused[0]:
                if scope["path"].startswith(CONSOLE + "/"):
                    await _sign_in_first(send)
                else:
                    await _reply(scope, receive, send, 401, "UNAUTHENTICATED", NOT_VALID)
                return
        if refused and refused[0]:
            return  # the route's own answer, replaced by the refusal
        await send(message)

    return checked


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


def _takes(limit: int) -> str:
    return f"this route takes {limit} bytes"


async def _reply(
    scope: Scope, receive: Receive, send: Send, status: int, code: str, message: str
) -> None:
    """The error body as the routes' handlers send it (gateway/errors.py), byte for byte: which
    part of the gateway refused a request is not for the client to tell."""
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    await JSONResponse(error_body(code, message), status_code=status, headers=headers)(
        scope, receive, send
    )

"""Request size limit: bodies larger than any upload we accept are refused before reading."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.errors import error_body


class BodySizeLimit:
    """Refuse a declared Content-Length above `max_bytes` with 413, without reading the body."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            declared = dict(scope["headers"]).get(b"content-length", b"0")
            if not declared.isdigit() or int(declared) > self.max_bytes:
                body = json.dumps(
                    error_body(
                        "PAYLOAD_TOO_LARGE", f"requests are limited to {self.max_bytes} bytes"
                    )
                ).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 413,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

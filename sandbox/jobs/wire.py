"""Messages between the runner and job processes: length-prefixed JSON objects, never pickle.

A job process is assumed escaped, so what it sends is parsed as data only: bounded in size,
strict JSON (no NaN or infinity), and an object at the top.
"""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

HEADER = struct.Struct("!I")
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class WireError(Exception):
    """The other end closed, stalled, or sent something that is not a message."""


def encode(message: dict[str, Any]) -> bytes:
    data = json.dumps(message, separators=(",", ":"), allow_nan=False).encode()
    if len(data) > MAX_MESSAGE_BYTES:
        raise WireError("message too large")
    return HEADER.pack(len(data)) + data


def send(channel: socket.socket, message: dict[str, Any]) -> None:
    try:
        channel.sendall(encode(message))
    except (OSError, ValueError, TypeError) as exc:
        raise WireError("could not send") from exc


def receive(channel: socket.socket, limit: int = MAX_MESSAGE_BYTES) -> dict[str, Any]:
    """One message; the socket's timeout, if any, bounds each read."""
    (length,) = HEADER.unpack(_exactly(channel, HEADER.size))
    if length > limit:
        raise WireError("message too large")
    try:
        message = json.loads(_exactly(channel, length), parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise WireError("not a message") from exc
    if not isinstance(message, dict):
        raise WireError("not a message")
    return message


def _exactly(channel: socket.socket, size: int) -> bytes:
    chunks, remaining = [], size
    while remaining:
        try:
            chunk = channel.recv(min(remaining, 1 << 20))
        except OSError as exc:  # includes the socket's timeout
            raise WireError("could not receive") from exc
        if not chunk:
            raise WireError("closed")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")

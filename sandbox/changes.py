"""A change marker: a small file whose new content tells every process sharing it to reload."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from sandbox.storage import NO_ROOM

TOKEN_BYTES = 64


class ChangeMarker:
    """`announce()` after a change; `changed()` is true once in each other process (and each
    other marker on the same file) for every announcement since it last looked.

    The content is a fresh random token written by atomic replace, so a reader never sees a
    half-written token and no two announcements look alike (times and inode numbers can)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen = self._read()

    def _read(self) -> bytes:
        try:
            descriptor = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return b""
        try:
            return os.read(descriptor, TOKEN_BYTES)
        finally:
            os.close(descriptor)

    def changed(self) -> bool:
        """Whether a change was announced since the last call; read before reloading, so a
        change announced during the reload is seen by the next call."""
        token = self._read()
        if token == self._seen:
            return False
        self._seen = token
        return True

    def announce(self) -> None:
        """Tell the other processes; this marker counts its own announcement as seen."""
        token = uuid.uuid4().hex.encode()
        staging = self.path.with_name(f".{self.path.name}.{os.getpid()}.{token.decode()}")
        try:
            staging.write_bytes(token)
            os.replace(staging, self.path)
        except OSError as exc:
            staging.unlink(missing_ok=True)
            if exc.errno not in NO_ROOM:
                raise
            self._overwrite(token)
        self._seen = token

    def _overwrite(self, token: bytes) -> None:
        """On a full volume: the token written over the marker's own bytes, which takes no new
        room. A reader may catch it half-written: that differs from what it saw, so it reloads,
        and reloads once more when it reads the whole token; it never misses the change."""
        descriptor = os.open(self.path, os.O_WRONLY)
        try:
            os.pwrite(descriptor, token, 0)
        finally:
            os.close(descriptor)

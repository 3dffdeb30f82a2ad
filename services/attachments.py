"""Documents filed with a registration (a compliance legal opinion, a valuation report, …):
each encrypted at rest under a key of its own, wrapped by the master key and bound to its
registration and hash; read back only by the registration's parties."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sandbox.keys import NONCE_BYTES, new_data_key, unwrap_any, wrap

WRAPPED_BYTES = NONCE_BYTES + 32 + 16
SHA256 = re.compile(r"[0-9a-f]{64}")


class AttachmentStore:
    """Encrypted documents under `root`, one folder per registration."""

    def __init__(self, root: Path, master_keys: Callable[[], list[bytes]]) -> None:
        self.root = root
        # Read afresh at each use, as a rotation by another process may have changed them:
        # the current key first; mid-rotation, the one it replaces too.
        self._keys = master_keys

    def put(self, registration: str, content: bytes) -> str:
        """Keep `content` encrypted; returns its SHA-256 (hex), its name in the store."""
        digest = hashlib.sha256(content).hexdigest()
        key = new_data_key()
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(key).encrypt(nonce, content, _bound(registration, digest))
        wrapped = wrap(self._keys()[0], key, _bound(registration, digest).decode())
        folder = self.root / registration
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = folder / digest
        temporary = folder / f".{digest}.part"
        with open(temporary, "wb", opener=lambda p, f: os.open(p, f, 0o600)) as handle:
            handle.write(wrapped + nonce + sealed)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        return digest

    def get(self, registration: str, digest: str) -> bytes:
        """The document, checked against its hash; KeyError if there is none."""
        if not SHA256.fullmatch(digest):
            raise KeyError(digest)
        try:
            stored = (self.root / registration / digest).read_bytes()
        except (FileNotFoundError, NotADirectoryError) as error:
            raise KeyError(digest) from error
        bound = _bound(registration, digest)
        key = unwrap_any(self._keys()[::-1], stored[:WRAPPED_BYTES], bound.decode())
        nonce = stored[WRAPPED_BYTES : WRAPPED_BYTES + NONCE_BYTES]
        try:
            content = AESGCM(key).decrypt(nonce, stored[WRAPPED_BYTES + NONCE_BYTES :], bound)
        except InvalidTag as error:
            raise ValueError("the document does not decrypt") from error
        if hashlib.sha256(content).hexdigest() != digest:
            raise ValueError("the document does not match its hash")
        return content

    def rewrap(self) -> int:
        """Wrap every document's key under the current master key; returns how many."""
        keys, count = self._keys(), 0
        for path in sorted(self.root.glob("*/*")):
            if path.name.startswith(".") or not SHA256.fullmatch(path.name):
                continue
            stored = path.read_bytes()
            bound = _bound(path.parent.name, path.name).decode()
            key = unwrap_any(keys[::-1], stored[:WRAPPED_BYTES], bound)
            temporary = path.with_name(f".{path.name}.part")
            temporary.write_bytes(wrap(keys[0], key, bound) + stored[WRAPPED_BYTES:])
            os.replace(temporary, path)
            count += 1
        return count


def _bound(registration: str, digest: str) -> bytes:
    return f"attachment:{registration}:{digest}".encode()

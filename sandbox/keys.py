"""Data keys: a random AES-256 key per asset, wrapped by the master key; and seals, HMACs under
keys derived from the master key, on the files kept beside the data that must not be forged."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hmac import HMAC
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32
NONCE_BYTES = 12


def create_master_key(path: Path) -> None:
    """Write a new master key readable by the owner only; never overwrite one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(os.urandom(KEY_BYTES))


def load_master_key(path: Path) -> bytes:
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise ValueError("the master key file is damaged")
    return key


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def wrap(master_key: bytes, data_key: bytes, asset_id: str) -> bytes:
    """Encrypt a data key under the master key, bound to its asset id."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(master_key).encrypt(nonce, data_key, asset_id.encode())


def unwrap(master_key: bytes, wrapped: bytes, asset_id: str) -> bytes:
    try:
        return AESGCM(master_key).decrypt(
            wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], asset_id.encode()
        )
    except InvalidTag as exc:
        raise ValueError("the data key does not unwrap under this master key") from exc


def unwrap_any(master_keys: list[bytes], wrapped: bytes, asset_id: str) -> bytes:
    """Unwrap under the first of `master_keys` that opens it: mid-rotation, some data keys are
    wrapped under the new master key and some still under the one it replaces."""
    for master_key in master_keys[:-1]:
        try:
            return unwrap(master_key, wrapped, asset_id)
        except ValueError:
            continue
    return unwrap(master_keys[-1], wrapped, asset_id)


def duckdb_key(data_key: bytes) -> str:
    """The text form DuckDB's ENCRYPTION_KEY option takes."""
    return base64.b64encode(data_key).decode()


def _seal_key(master_key: bytes, purpose: str) -> bytes:
    """A key for one purpose's seals alone, derived from the master key (HKDF-SHA256)."""
    info = f"veil seal v1 {purpose}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master_key)


def seal(master_key: bytes, purpose: str, content: bytes) -> str:
    """An HMAC-SHA256 tag (hex) over `content` under the master key's key for `purpose`."""
    mac = HMAC(_seal_key(master_key, purpose), hashes.SHA256())
    mac.update(content)
    return mac.finalize().hex()


def sealed(master_keys: list[bytes], purpose: str, content: bytes, tag: object) -> bool:
    """Whether `tag` is a seal on `content` for `purpose` under one of `master_keys` (the
    replaced one still counts until a rotation has sealed everything anew)."""
    if not isinstance(tag, str):
        return False
    try:
        expected = bytes.fromhex(tag)
    except ValueError:
        return False
    for master_key in master_keys:
        mac = HMAC(_seal_key(master_key, purpose), hashes.SHA256())
        mac.update(content)
        try:
            mac.verify(expected)
        except InvalidSignature:
            continue
        return True
    return False

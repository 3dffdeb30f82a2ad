"""Data keys: a random AES-256 key per asset, wrapped by the master key."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

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

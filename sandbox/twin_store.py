"""A twin's released histograms kept beside its asset's data, encrypted under a key derived from
the asset's data key: later twins spend nothing, and destroying the asset destroys them too."""

from __future__ import annotations

import base64
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sandbox.errors import AssetNotFound, Violation
from sandbox.keys import KEY_BYTES, NONCE_BYTES
from sandbox.store import AssetStore
from sandbox.twin import Marginals

LOCK_FILE = "twin.lock"


class TwinStore:
    """Reads and writes each asset version's twin histograms in the asset store."""

    def __init__(self, store: AssetStore) -> None:
        self.store = store

    def _folder(self, asset_id: str) -> Path:
        folder = self.store.root / asset_id
        if not folder.is_dir():
            raise AssetNotFound("no such asset", [Violation("unknown_asset")])
        return folder

    @contextmanager
    def making(self, asset_id: str) -> Iterator[None]:
        """Held while one version's twin is looked up or made, across threads and processes,
        so that it is measured (and its ε spent) once."""
        with open(self._folder(asset_id) / LOCK_FILE, "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def load(self, asset_id: str, version: int) -> Marginals | None:
        path = self._path(asset_id, version)
        try:
            sealed = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            text = self._cipher(asset_id).decrypt(
                sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], _bound(asset_id, version)
            )
        except InvalidTag:
            return None  # sealed under a data key since replaced: made afresh
        return Marginals.from_json(text.decode())

    def save(self, asset_id: str, version: int, marginals: Marginals) -> None:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._cipher(asset_id).encrypt(
            nonce, marginals.to_json().encode(), _bound(asset_id, version)
        )
        path = self._path(asset_id, version)
        fresh = path.with_name(f".{path.name}.next")
        fresh.write_bytes(nonce + sealed)
        os.replace(fresh, path)

    def _path(self, asset_id: str, version: int) -> Path:
        return self._folder(asset_id) / f"twin-v{version}.sealed"

    def _cipher(self, asset_id: str) -> AESGCM:
        attachment = next((a for a in self.store.attachments() if a.asset_id == asset_id), None)
        if attachment is None:
            raise AssetNotFound("no such asset", [Violation("unknown_asset")])
        derive = HKDF(
            algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=b"veil twin histograms"
        )
        return AESGCM(derive.derive(base64.b64decode(attachment.key)))


def _bound(asset_id: str, version: int) -> bytes:
    return f"{asset_id}:{version}".encode()

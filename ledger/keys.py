"""The ledger's Ed25519 signing key, stored as a raw 32-byte seed readable by its owner only."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.errors import InvalidKey

SEED_BYTES = 32


def generate_signing_key(path: Path) -> None:
    """Write a new key with mode 0600; raises FileExistsError rather than replace a key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    seed = Ed25519PrivateKey.generate().private_bytes_raw()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        # The umask can only narrow the mode given to open; make it exactly 0600 anyway.
        os.fchmod(handle.fileno(), 0o600)
        handle.write(seed)
        handle.flush()
        os.fsync(handle.fileno())


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    seed = Path(path).read_bytes()
    if len(seed) != SEED_BYTES:
        raise InvalidKey("the ledger signing key file is damaged")
    return Ed25519PrivateKey.from_private_bytes(seed)

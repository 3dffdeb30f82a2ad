"""The keys that protect Veil: loading the master key, and rotating it and the ledger's."""

from __future__ import annotations

import os
import secrets

from ledger import Ledger, Receipt, generate_signing_key, load_signing_key
from sandbox.keys import create_master_key, load_master_key
from sandbox.store import AssetStore
from services.settings import Settings


def load_master_keys(settings: Settings) -> tuple[bytes, bytes | None]:
    """The master key, and the one it replaced while a rotation has not finished."""
    previous = settings.previous_master_key_path
    return load_master_key(settings.master_key_path), (
        load_master_key(previous) if previous.exists() else None
    )


def metrics_token(settings: Settings) -> str:
    """The bearer token /metrics asks for: from the environment, else the home's token file,
    made on first use. Metrics count everyone's activity, so no principal's key opens them."""
    if settings.metrics_token:
        return settings.metrics_token
    path = settings.metrics_token_path
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        made = path.with_name(f"metrics.token.{os.getpid()}")
        descriptor = os.open(made, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(32))
        try:
            os.link(made, path)  # whole or not at all; a process that got there first wins
        except FileExistsError:
            pass
        finally:
            made.unlink()
    return path.read_text().strip()


def rotate_master_key(settings: Settings) -> int:
    """Replace the master key and wrap every data key under the new one; returns how many.

    Run with every gateway stopped: each holds the master key it started with. Each step can
    be interrupted and the command run again to finish, and a gateway started meanwhile
    still opens every asset, since it loads the replaced key too while that is kept."""
    current, previous = settings.master_key_path, settings.previous_master_key_path
    upcoming = current.with_name("master.key.next")
    if not previous.exists():
        if not upcoming.exists():
            create_master_key(upcoming)
        os.link(current, previous)
    if upcoming.exists():
        os.replace(upcoming, current)
    master_key, replaced = load_master_keys(settings)
    store = AssetStore(settings.assets_root, settings.keyring_root, master_key, replaced)
    rewrapped = store.rewrap()
    previous.unlink()
    return rewrapped


def rotate_signing_key(settings: Settings) -> Receipt:
    """Replace the ledger's signing key: the log records the new public key in an entry both
    keys sign, then the new key file takes the old one's place. Run with every gateway
    stopped; if interrupted, run it again to finish the same rotation."""
    current = settings.signing_key_path
    upcoming = current.with_name("ledger-signing.key.next")
    if not upcoming.exists():
        generate_signing_key(upcoming)
    ledger = Ledger.open(settings.ledger_url, current)
    try:
        receipt = ledger.rotate_signing_key(load_signing_key(upcoming))
    finally:
        ledger.close()
    os.replace(upcoming, current)
    return receipt

import base64
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import (
    LedgerError,
    generate_signing_key,
    load_signing_key,
    public_key_b64,
    root_from_leaves,
    sign_checkpoint,
    verify_checkpoint,
)
from ledger.checkpoints import key_id, open_note, sign_note

# The signed-note example of golang.org/x/mod/sumdb/note (Ed25519 signatures are deterministic).
GO_SEED = base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")[1:]
GO_PUBLIC = base64.b64decode("ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")[1:]
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n— PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ORIGIN = "example.test/log"
ROOT = root_from_leaves([])


def test_matches_the_go_reference_note() -> None:
    key = Ed25519PrivateKey.from_private_bytes(GO_SEED)
    assert public_key_b64(key) == base64.b64encode(GO_PUBLIC).decode()
    assert key_id("PeterNeumann", key.public_key()).hex() == "c74f20a3"
    assert sign_note(key, "PeterNeumann", GO_TEXT) == GO_NOTE
    assert open_note(GO_NOTE, "PeterNeumann", key.public_key()) == GO_TEXT
    with pytest.raises(LedgerError):
        open_note(GO_NOTE.replace("cryptography", "cryptographY"), "PeterNeumann", key.public_key())


def test_checkpoint_round_trip_and_format() -> None:
    key = Ed25519PrivateKey.generate()
    note = sign_checkpoint(key, ORIGIN, 7, ROOT)
    body = f"{ORIGIN}\n7\n{base64.b64encode(ROOT).decode()}\n\n— {ORIGIN} "
    assert note.startswith(body) and note.endswith("\n")
    assert len(base64.b64decode(note[len(body) :])) == 4 + 64
    assert verify_checkpoint(note, key.public_key(), ORIGIN) == (7, ROOT)
    assert verify_checkpoint(note, public_key_b64(key), ORIGIN) == (7, ROOT)


def test_unknown_signatures_are_ignored() -> None:
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    note = sign_checkpoint(key, ORIGIN, 1, ROOT)
    witness = sign_note(other, "witness.test", note.split("\n\n")[0] + "\n").split("\n\n")[1]
    assert verify_checkpoint(note + witness, key.public_key(), ORIGIN) == (1, ROOT)


def test_rejects_bad_checkpoints() -> None:
    key = Ed25519PrivateKey.generate()
    note = sign_checkpoint(key, ORIGIN, 5, ROOT)
    forged = sign_checkpoint(Ed25519PrivateKey.generate(), ORIGIN, 5, ROOT)
    for bad, origin in [
        (note.replace("\n5\n", "\n6\n"), ORIGIN),
        (forged, ORIGIN),
        (note, "other.test/log"),
        (note.replace("\n\n", "\n"), ORIGIN),
        (note[:-1], ORIGIN),
        (note[:-6] + "!!!!=\n", ORIGIN),
    ]:
        with pytest.raises(LedgerError) as caught:
            verify_checkpoint(bad, key.public_key(), origin)
        assert caught.value.code == "CHECKPOINT_INVALID"
    with pytest.raises(LedgerError):
        sign_checkpoint(key, "has space", 1, ROOT)


def test_signing_key_file(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "ledger.key"
    generate_signing_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_bytes()) == 32
    with pytest.raises(FileExistsError):
        generate_signing_key(path)
    key = load_signing_key(path)
    assert verify_checkpoint(sign_checkpoint(key, ORIGIN, 0, ROOT), key.public_key(), ORIGIN)
    path.write_bytes(b"short")
    with pytest.raises(LedgerError) as caught:
        load_signing_key(path)
    assert caught.value.code == "LEDGER_KEY_INVALID"

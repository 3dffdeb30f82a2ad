"""Receipts checked on the client: the checkpoint's signature under a pinned key, then RFC 9162
inclusion. A tampered leaf, a wrong key and a checkpoint of another log each fail."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from veil_client import ReceiptInvalid, Veil
from veil_client.models import Receipt
from veil_client.receipts import check_receipt, signed_tree

from ledger.checkpoints import public_key_b64, sign_checkpoint
from ledger.keys import load_signing_key
from tests.client.onboarding import VISITS_BY_DISTRICT
from tests.support import Server


@pytest.fixture(scope="module")
def answered(demo: Server) -> tuple[Receipt, str, str]:
    """A real receipt, its entry's data, and the key pinned from the demo's own key file."""
    with Veil(demo.url, demo.keys["analyst"]) as veil:
        receipt = veil.queries.run(VISITS_BY_DISTRICT).receipt
        entry = veil.ledger.entries(after=receipt.ledger_index - 1, limit=1)[0]
    pinned = public_key_b64(load_signing_key(demo.home / "keys" / "ledger-signing.key"))
    return receipt, entry.data, pinned


def test_a_receipt_verifies_under_the_pinned_key(demo: Server, answered) -> None:
    receipt, data, pinned = answered
    with Veil(demo.url) as veil:  # checkpoints and proofs are public
        assert veil.ledger.public_key().public_key == pinned
        verified = veil.ledger.verify_receipt(receipt, public_key=pinned, data=data)
        checkpoint = veil.ledger.checkpoint()
        consistency = veil.ledger.consistency_proof(receipt.ledger_index, checkpoint.tree_size)
    assert verified.ledger_index == receipt.ledger_index
    assert consistency and all(len(node) == 64 for node in consistency)
    assert verified.tree_size > receipt.ledger_index and verified.origin == "veil.local/ledger"
    assert verified.root_hash == checkpoint.root_hash or checkpoint.tree_size > verified.tree_size


def test_a_tampered_leaf_fails(demo: Server, answered) -> None:
    receipt, data, pinned = answered
    flipped = f"{int(receipt.leaf_hash[0], 16) ^ 1:x}{receipt.leaf_hash[1:]}"
    with Veil(demo.url) as veil:
        with pytest.raises(ReceiptInvalid, match="not included"):
            veil.ledger.verify_receipt(
                Receipt(ledger_index=receipt.ledger_index, leaf_hash=flipped), public_key=pinned
            )
        with pytest.raises(ReceiptInvalid, match="does not hash"):
            veil.ledger.verify_receipt(receipt, public_key=pinned, data=data.replace("}", " }", 1))
        with pytest.raises(ReceiptInvalid, match="not included"):  # another index, same leaf
            veil.ledger.verify_receipt(
                Receipt(ledger_index=receipt.ledger_index - 1, leaf_hash=receipt.leaf_hash),
                public_key=pinned,
            )


def test_a_wrong_key_fails(demo: Server, answered) -> None:
    receipt, _, _ = answered
    stranger = public_key_b64(Ed25519PrivateKey.generate())
    with Veil(demo.url) as veil, pytest.raises(ReceiptInvalid, match="not signed by the pinned"):
        veil.ledger.verify_receipt(receipt, public_key=stranger)


def test_a_checkpoint_of_another_log_fails(demo: Server, answered) -> None:
    receipt, _, pinned = answered
    with Veil(demo.url) as veil:
        checkpoint = veil.ledger.checkpoint()
        path = veil.ledger.inclusion_proof(receipt.ledger_index, checkpoint.tree_size)
    root = bytes.fromhex(checkpoint.root_hash)
    size = checkpoint.tree_size
    demo_key = load_signing_key(demo.home / "keys" / "ledger-signing.key")
    other_key = Ed25519PrivateKey.generate()
    # The control: this tree head, signed by the pinned key as this log, verifies.
    control = signed_tree(sign_checkpoint(demo_key, "veil.local/ledger", size, root), pinned)
    assert check_receipt(receipt, control, path).tree_size == size
    # The same head signed by another log's key, under its name or under this log's.
    for origin in ("other.example/log", "veil.local/ledger"):
        with pytest.raises(ReceiptInvalid, match="not signed by the pinned"):
            signed_tree(sign_checkpoint(other_key, origin, size, root), pinned)
    # The pinned key signing for another log: its checkpoints say nothing about this one.
    with pytest.raises(ReceiptInvalid):
        signed_tree(sign_checkpoint(demo_key, "other.example/log", size, root), pinned)
    # Another log's own head, checked as that log: the receipt is not in its tree.
    other_root = bytes(32)
    other = signed_tree(
        sign_checkpoint(other_key, "other.example/log", size, other_root),
        public_key_b64(other_key),
        origin="other.example/log",
    )
    with pytest.raises(ReceiptInvalid, match="not included"):
        check_receipt(receipt, other, path)


def test_malformed_keys_and_notes_fail_closed(answered) -> None:
    _, _, pinned = answered
    for key in ("not base64!", base64.b64encode(b"short").decode()):
        with pytest.raises(ReceiptInvalid):
            signed_tree("veil.local/ledger\n1\nAA==\n\n— veil.local/ledger AAAA\n", key)
    for note in ("", "no signature block\n", "veil.local/ledger\n1\n\n\nunsigned\n"):
        with pytest.raises(ReceiptInvalid):
            signed_tree(note, pinned)

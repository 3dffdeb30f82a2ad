"""Checking a receipt on the client: the checkpoint's Ed25519 signature under a pinned key
(C2SP signed note), then the leaf's RFC 9162 inclusion proof against the signed root."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from veil_client.errors import ReceiptInvalid
from veil_client.models import Receipt, VerifiedReceipt

DEFAULT_ORIGIN = "veil.local/ledger"
SIGNATURE_PREFIX = "\u2014 "
ED25519_TYPE = b"\x01"
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_HEX_HASH = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class SignedTree:
    """A tree head the pinned key signed."""

    origin: str
    size: int
    root: bytes


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162: SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def _node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def included(leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2: does `path` place leaf hash `leaf` at `index` under `root`?"""
    if not 0 <= index < size:
        return False
    fn, sn, node = index, size - 1, leaf
    for sibling in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            node = _node_hash(sibling, node)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            node = _node_hash(node, sibling)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and node == root


def signed_tree(note: str, public_key: str, origin: str = DEFAULT_ORIGIN) -> SignedTree:
    """The tree head of a C2SP checkpoint `note` if the key (`origin`, `public_key`) signed it.

    Signatures by other keys are ignored, as the signed-note spec requires; one by this key
    that fails rejects the note."""
    key = _public_key(public_key)
    text = _signed_text(note, origin, key)
    lines = text.split("\n")[:-1]
    if len(lines) < 3 or lines[0] != origin:
        raise ReceiptInvalid("the checkpoint is not from the pinned log")
    if not _DECIMAL.fullmatch(lines[1]):
        raise ReceiptInvalid("the checkpoint's tree size is malformed")
    root = _b64(lines[2], "the checkpoint's root")
    if len(root) != 32:
        raise ReceiptInvalid("the checkpoint's root is not a SHA-256 hash")
    return SignedTree(origin, int(lines[1]), root)


def check_receipt(
    receipt: Receipt,
    tree: SignedTree,
    audit_path: Sequence[str],
    data: str | bytes | None = None,
) -> VerifiedReceipt:
    """The receipt, proven included in `tree`; with `data`, its leaf hash is checked too."""
    if not _HEX_HASH.fullmatch(receipt.leaf_hash):
        raise ReceiptInvalid("the receipt's leaf hash is not a hex SHA-256 hash")
    leaf = bytes.fromhex(receipt.leaf_hash)
    if data is not None:
        raw = data.encode() if isinstance(data, str) else data
        if leaf_hash(raw) != leaf:
            raise ReceiptInvalid("the entry's data does not hash to the receipt's leaf")
    if not all(_HEX_HASH.fullmatch(node) for node in audit_path):
        raise ReceiptInvalid("the inclusion proof is malformed")
    path = [bytes.fromhex(node) for node in audit_path]
    if not included(leaf, receipt.ledger_index, tree.size, path, tree.root):
        raise ReceiptInvalid("the receipt is not included in the signed tree")
    return VerifiedReceipt(
        ledger_index=receipt.ledger_index,
        leaf_hash=receipt.leaf_hash,
        tree_size=tree.size,
        root_hash=tree.root.hex(),
        origin=tree.origin,
    )


def _public_key(text: str) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(_b64(text, "the pinned public key"))
    except ValueError as error:
        raise ReceiptInvalid("the pinned public key is not an Ed25519 key") from error


def _signed_text(note: str, name: str, key: Ed25519PublicKey) -> str:
    """The text of `note` that `key` under `name` signed (C2SP signed-note)."""
    if not note.endswith("\n") or any(ord(c) < 0x20 and c != "\n" for c in note):
        raise ReceiptInvalid("the checkpoint note is malformed")
    split = note.rfind("\n\n")
    if split < 0:
        raise ReceiptInvalid("the checkpoint note has no signatures")
    text, lines = note[: split + 1], note[split + 2 : -1].split("\n")
    wanted = _key_id(name, key)
    signed = False
    for line in lines:
        signer, _, blob = line.removeprefix(SIGNATURE_PREFIX).partition(" ")
        if not line.startswith(SIGNATURE_PREFIX) or not signer:
            raise ReceiptInvalid("the checkpoint note has a malformed signature line")
        raw = _b64(blob, "a checkpoint signature")
        if signer != name or raw[:4] != wanted:
            continue
        try:
            key.verify(raw[4:], text.encode())
        except InvalidSignature as error:
            raise ReceiptInvalid("the checkpoint's signature does not verify") from error
        signed = True
    if not signed:
        raise ReceiptInvalid("the checkpoint is not signed by the pinned key")
    return text


def _key_id(name: str, key: Ed25519PublicKey) -> bytes:
    """SHA-256(name || 0x0A || 0x01 || public key)[:4], the signed-note key id."""
    return hashlib.sha256(name.encode() + b"\n" + ED25519_TYPE + key.public_bytes_raw()).digest()[
        :4
    ]


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ReceiptInvalid(f"{what} is not base64") from error

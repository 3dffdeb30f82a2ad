"""C2SP signed notes and tlog checkpoints, signed with the ledger's Ed25519 key."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from ledger.errors import CheckpointInvalid

ED25519_TYPE = b"\x01"
SIGNATURE_PREFIX = "\u2014 "
MAX_SIGNATURES = 100
_KEY_NAME = re.compile(r"[^\s+]+")
_TREE_SIZE = re.compile(r"0|[1-9][0-9]*")
# Control characters other than the newline, which a note's text may not hold.
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


def public_key_b64(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """Standard base64 of the raw 32-byte Ed25519 public key."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return base64.b64encode(public.public_bytes_raw()).decode("ascii")


def key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    """SHA-256(name || 0x0A || 0x01 || public key)[:4], as signed-note recommends."""
    material = name.encode() + b"\n" + ED25519_TYPE + public_key.public_bytes_raw()
    return hashlib.sha256(material).digest()[:4]


def check_key_name(name: str) -> None:
    if not _KEY_NAME.fullmatch(name):
        raise CheckpointInvalid("a key name must be non-empty, without spaces or '+'")


def sign_note(key: Ed25519PrivateKey, name: str, text: str, *cosigners: Ed25519PrivateKey) -> str:
    """Append an Ed25519 signature line by `name` to `text`, one per key."""
    check_key_name(name)
    if not text.endswith("\n") or _has_control(text):
        raise CheckpointInvalid("note text must end in a newline and hold no control chars")
    lines = []
    for signer in (key, *cosigners):
        signature = key_id(name, signer.public_key()) + signer.sign(text.encode())
        lines.append(f"{SIGNATURE_PREFIX}{name} {base64.b64encode(signature).decode()}\n")
    return f"{text}\n{''.join(lines)}"


def open_note(note: str, name: str, public_key: Ed25519PublicKey) -> str:
    """Return the text of `note` if the key (name, public_key) signed it; raise otherwise.

    Signatures from other keys are ignored, as the spec requires; a failing signature from
    this key rejects the whole note.
    """
    if _has_control(note) or not note.endswith("\n"):
        raise CheckpointInvalid("malformed note")
    split = note.rfind("\n\n")
    if split < 0:
        raise CheckpointInvalid("malformed note: no signature block")
    text, lines = note[: split + 1], note[split + 2 : -1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise CheckpointInvalid("too many signatures")
    wanted_id = key_id(name, public_key)
    verified = False
    for line in lines:
        if not line.startswith(SIGNATURE_PREFIX):
            raise CheckpointInvalid("malformed signature line")
        signer, _, blob = line[len(SIGNATURE_PREFIX) :].partition(" ")
        try:
            raw = base64.b64decode(blob, validate=True)
        except binascii.Error as error:
            raise CheckpointInvalid("malformed signature") from error
        if not _KEY_NAME.fullmatch(signer) or len(raw) < 5:
            raise CheckpointInvalid("malformed signature line")
        if signer != name or raw[:4] != wanted_id:
            continue
        try:
            public_key.verify(raw[4:], text.encode())
        except InvalidSignature as error:
            raise CheckpointInvalid("checkpoint signature does not verify") from error
        verified = True
    if not verified:
        raise CheckpointInvalid("no signature from the ledger key")
    return text


def sign_checkpoint(
    key: Ed25519PrivateKey, origin: str, size: int, root: bytes, *cosigners: Ed25519PrivateKey
) -> str:
    """A checkpoint note for a tree, signed under the key name `origin` (and cosigned by the
    new key when it introduces one)."""
    if size < 0 or len(root) != 32:
        raise CheckpointInvalid("a checkpoint needs a size >= 0 and a 32-byte root")
    body = f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"
    return sign_note(key, origin, body, *cosigners)


def public_key_from_b64(text: str) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError) as error:
        raise CheckpointInvalid("the public key is not base64 Ed25519") from error


def verify_checkpoint(
    note: str, public_key: Ed25519PublicKey | str, origin: str
) -> tuple[int, bytes]:
    """Check the signature and origin of a checkpoint note; return (tree size, root hash)."""
    if isinstance(public_key, str):
        public_key = public_key_from_b64(public_key)
    lines = open_note(note, origin, public_key).split("\n")[:-1]
    if len(lines) < 3 or any(not line for line in lines):
        raise CheckpointInvalid("checkpoint body needs origin, size and root lines")
    if lines[0] != origin:
        raise CheckpointInvalid("checkpoint is from another origin")
    if not _TREE_SIZE.fullmatch(lines[1]):
        raise CheckpointInvalid("checkpoint tree size is malformed")
    try:
        root = base64.b64decode(lines[2], validate=True)
    except binascii.Error as error:
        raise CheckpointInvalid("checkpoint root is not base64") from error
    if len(root) != 32:
        raise CheckpointInvalid("checkpoint root is not a SHA-256 hash")
    return int(lines[1]), root


def _has_control(text: str) -> bool:
    return _CONTROL.search(text) is not None

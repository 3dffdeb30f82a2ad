"""Signed documents: a JSON document as a C2SP signed note under the ledger's key, which anyone
can verify offline with the ledger's public key (`GET /v1/ledger/public-key`).

The note's first line names the document's kind (`veil-document/<kind>`), so a document can
never be taken for a checkpoint (whose second line is a tree size) nor one kind for another.
"""

from __future__ import annotations

import json
import re

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.canonical import canonical_json
from ledger.checkpoints import open_note, public_key_from_b64, sign_note
from ledger.errors import CheckpointInvalid

HEADER = "veil-document/"
_KIND = re.compile(r"[a-z][a-z0-9_]{0,31}")


class DocumentInvalid(CheckpointInvalid):
    """A document that is malformed, of another kind, or not signed by the key given."""


def sign_document(key: Ed25519PrivateKey, name: str, kind: str, body: dict) -> str:
    """`body` as canonical JSON under a `kind` header line, signed by `key` as `name`."""
    if not _KIND.fullmatch(kind):
        raise DocumentInvalid("a document kind is a lowercase name")
    return sign_note(key, name, f"{HEADER}{kind}\n{canonical_json(body)}\n")


def open_document(note: str, name: str, public_key: Ed25519PublicKey | str, kind: str) -> dict:
    """The document's body if `public_key` (as `name`) signed it and it is of `kind`."""
    if isinstance(public_key, str):
        public_key = public_key_from_b64(public_key)
    try:
        text = open_note(note, name, public_key)
    except CheckpointInvalid as error:
        raise DocumentInvalid(str(error)) from error
    lines = text.split("\n")
    if len(lines) != 3 or lines[0] != f"{HEADER}{kind}" or lines[2] != "":
        raise DocumentInvalid(f"not a {kind} document")
    try:
        body = json.loads(lines[1])
    except ValueError as error:
        raise DocumentInvalid("the document's body is not JSON") from error
    if not isinstance(body, dict) or canonical_json(body) != lines[1]:
        raise DocumentInvalid("the document's body is not canonical JSON")
    return body

"""A receipt checked: the entry it names is in the log under the newest signed checkpoint,
by the same RFC 9162 inclusion proof and Ed25519 signature any third party would check."""

from __future__ import annotations

from dataclasses import dataclass

from governance import Principal
from ledger import LedgerError
from ledger.checkpoints import verify_checkpoint
from ledger.merkle import verify_inclusion
from services.errors import Missing
from services.ledger_access import readable_entries, reader
from services.runtime import Services


@dataclass(frozen=True)
class ReceiptCheck:
    index: int
    leaf_hash: str
    data: str
    tree_size: int
    root_hash: str
    note: str
    audit_path: list[str]
    # Whether the checkpoint's signature and origin hold under the ledger's public key.
    signed: bool
    # None while the entry is newer than the signed checkpoint (the next one covers it).
    included: bool | None


def check_receipt(veil: Services, *, caller: Principal, index: int) -> ReceiptCheck:
    """Check the caller's own entry at `index` against the signed checkpoint; an entry the
    caller is no party to is Missing, as if it did not exist."""
    found = readable_entries(veil, reader(veil, caller), index - 1, 1)
    if not found or found[0].index != index:
        raise Missing("no such receipt among yours")
    entry = found[0]
    checkpoint = veil.ledger.checkpoint()
    origin, key = veil.ledger.public_key()
    try:
        size, root = verify_checkpoint(checkpoint.note, key, origin)
    except LedgerError:
        return ReceiptCheck(index, entry.leaf_hash, entry.data, checkpoint.tree_size, "",
                            checkpoint.note, [], signed=False, included=False)  # fmt: skip
    path: list[str] = []
    included: bool | None = None
    if index < size:
        path = veil.ledger.inclusion_proof(index, size)
        proof = [bytes.fromhex(node) for node in path]
        included = verify_inclusion(bytes.fromhex(entry.leaf_hash), index, size, proof, root)
    return ReceiptCheck(index, entry.leaf_hash, entry.data, size, root.hex(), checkpoint.note,
                        path, signed=True, included=included)  # fmt: skip

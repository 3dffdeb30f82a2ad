"""`veil.ledger`: entries for their parties; checkpoints, the key and proofs for anyone, and
receipts checked on this side against a pinned key."""

from __future__ import annotations

from veil_client.errors import ReceiptInvalid
from veil_client.models import Checkpoint, Entry, LedgerKey, Receipt, VerifiedReceipt, parsed
from veil_client.receipts import DEFAULT_ORIGIN, check_receipt, signed_tree
from veil_client.transport import Transport


class Ledger:
    def __init__(self, transport: Transport) -> None:
        self._http = transport

    def checkpoint(self) -> Checkpoint:
        return parsed(Checkpoint, self._http.get("/v1/ledger/checkpoint"))

    def public_key(self) -> LedgerKey:
        """The key the server says it signs with; pin it out of band, not from here."""
        return parsed(LedgerKey, self._http.get("/v1/ledger/public-key"))

    def inclusion_proof(self, index: int, size: int) -> list[str]:
        answer = self._http.get("/v1/ledger/proof/inclusion", {"index": index, "size": size})
        return parsed(list[str], answer["audit_path"])

    def consistency_proof(self, first: int, second: int) -> list[str]:
        answer = self._http.get("/v1/ledger/proof/consistency", {"from": first, "to": second})
        return parsed(list[str], answer["proof"])

    def entries(self, after: int | None = None, limit: int = 100) -> list[Entry]:
        """The entries the caller is a party to, oldest first, after index `after`."""
        answer = self._http.get("/v1/ledger/entries", {"after": after, "limit": limit})
        return parsed(list[Entry], answer["items"])

    def verify_receipt(
        self,
        receipt: Receipt | dict,
        *,
        public_key: str,
        origin: str = DEFAULT_ORIGIN,
        data: str | bytes | None = None,
    ) -> VerifiedReceipt:
        """Prove the receipt is in the log signed by the pinned `public_key` (base64 Ed25519):
        the newest checkpoint's signature, then the inclusion proof at its size. With the
        entry's `data`, its leaf hash is checked too. Raises ReceiptInvalid otherwise."""
        receipt = parsed(Receipt, receipt)
        tree = signed_tree(self.checkpoint().note, public_key, origin)
        if not 0 <= receipt.ledger_index < tree.size:
            raise ReceiptInvalid("the receipt lies beyond the signed tree")
        path = self.inclusion_proof(receipt.ledger_index, tree.size)
        return check_receipt(receipt, tree, path, data)

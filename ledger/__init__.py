"""Tamper-evident usage ledger: Merkle log, checkpoints, pricing, postings and settlements."""

from ledger.allocation import allocate
from ledger.canonical import canonical_json
from ledger.checkpoints import public_key_b64, sign_checkpoint, verify_checkpoint
from ledger.disclosure import Disclosure, disclose
from ledger.documents import DocumentInvalid, open_document, sign_document
from ledger.errors import (
    CheckpointInvalid,
    InvalidEntry,
    InvalidKey,
    InvalidRange,
    LedgerCorrupt,
    LedgerError,
    LedgerUnavailable,
    PricingInvalid,
)
from ledger.keys import generate_signing_key, load_signing_key
from ledger.log import Ledger, check_entry
from ledger.merkle import (
    Frontier,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
)
from ledger.parties import Parties, parties
from ledger.postings import PAYEE, PAYER, Posting, post
from ledger.pricing import ENVELOPE_PLAN, AssetCharge, AssetUse, Charge, billed_cpu_ms, price
from ledger.records import Checkpoint, Entry, Receipt, VerifyReport
from ledger.settlements import PostingLine, Settlement, settle
from ledger.usage import Usage, UsageLine, usage

__all__ = [
    "DocumentInvalid",
    "open_document",
    "sign_document",
    "Disclosure",
    "disclose",
    "PAYEE",
    "PAYER",
    "PostingLine",
    "Settlement",
    "Usage",
    "UsageLine",
    "settle",
    "usage",
    "AssetCharge",
    "AssetUse",
    "Posting",
    "allocate",
    "post",
    "price",
    "billed_cpu_ms",
    "ENVELOPE_PLAN",
    "Parties",
    "parties",
    "Charge",
    "Checkpoint",
    "CheckpointInvalid",
    "Entry",
    "Frontier",
    "InvalidEntry",
    "InvalidKey",
    "InvalidRange",
    "Ledger",
    "LedgerCorrupt",
    "LedgerError",
    "LedgerUnavailable",
    "PricingInvalid",
    "Receipt",
    "VerifyReport",
    "canonical_json",
    "check_entry",
    "consistency_proof",
    "generate_signing_key",
    "inclusion_proof",
    "leaf_hash",
    "load_signing_key",
    "node_hash",
    "public_key_b64",
    "root_from_leaves",
    "sign_checkpoint",
    "verify_checkpoint",
    "verify_consistency",
    "verify_inclusion",
]

"""The ledger, read-only: entries to their parties; checkpoints, the key and proofs to anyone."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from gateway.auth import Veil
from gateway.authorisation import Allowed
from services.ledger_access import readable_entries, reader

router = APIRouter(prefix="/v1/ledger", tags=["ledger"])

Reader = Allowed("ledger:read")

MAX_INDEX = 2**53  # beyond any real log, and within every database's integers


@router.get("/entries")
def entries(
    permit: Reader,
    veil: Veil,
    after: Annotated[int | None, Query(ge=-1, le=MAX_INDEX)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict:
    """The entries the caller is a party to, oldest first: up to `limit` after index `after`."""
    items = readable_entries(veil, reader(veil, permit.caller), after, limit)
    return {"items": [{"index": e.index, "leaf_hash": e.leaf_hash, "data": e.data} for e in items]}


# Checkpoints, the key and proofs are public, with no key: anyone holding a receipt can
# verify it. They name no entry's content.


@router.get("/checkpoint")
def checkpoint(veil: Veil) -> dict:
    current = veil.ledger.checkpoint()
    return {"tree_size": current.tree_size, "root_hash": current.root_hash, "note": current.note}


@router.get("/public-key")
def public_key(veil: Veil) -> dict:
    name, key = veil.ledger.public_key()
    return {"name": name, "public_key": key}


@router.get("/proof/inclusion")
def inclusion(
    index: Annotated[int, Query(ge=0, le=MAX_INDEX)],
    size: Annotated[int, Query(ge=1, le=MAX_INDEX)],
    veil: Veil,
) -> dict:
    return {"audit_path": veil.ledger.inclusion_proof(index, size)}


@router.get("/proof/consistency")
def consistency(
    frm: Annotated[int, Query(alias="from", ge=1, le=MAX_INDEX)],
    to: Annotated[int, Query(ge=1, le=MAX_INDEX)],
    veil: Veil,
) -> dict:
    return {"proof": veil.ledger.consistency_proof(frm, to)}

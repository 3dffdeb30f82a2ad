"""The ledger, read-only: entries, signed checkpoints, the public key and proofs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from gateway.auth import Veil
from gateway.authorisation import Allowed

router = APIRouter(prefix="/v1/ledger", tags=["ledger"])

Reader = Allowed("ledger:read")

MAX_INDEX = 2**53  # beyond any real log, and within every database's integers


@router.get("/entries")
def entries(
    _: Reader,
    veil: Veil,
    after: Annotated[int | None, Query(ge=-1, le=MAX_INDEX)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict:
    items = veil.ledger.entries(after=after, limit=limit)
    return {"items": [{"index": e.index, "leaf_hash": e.leaf_hash, "data": e.data} for e in items]}


@router.get("/checkpoint")
def checkpoint(_: Reader, veil: Veil) -> dict:
    current = veil.ledger.checkpoint()
    return {"tree_size": current.tree_size, "root_hash": current.root_hash, "note": current.note}


@router.get("/public-key")
def public_key(_: Reader, veil: Veil) -> dict:
    name, key = veil.ledger.public_key()
    return {"name": name, "public_key": key}


@router.get("/proof/inclusion")
def inclusion(
    index: Annotated[int, Query(ge=0, le=MAX_INDEX)],
    size: Annotated[int, Query(ge=1, le=MAX_INDEX)],
    _: Reader,
    veil: Veil,
) -> dict:
    return {"audit_path": veil.ledger.inclusion_proof(index, size)}


@router.get("/proof/consistency")
def consistency(
    frm: Annotated[int, Query(alias="from", ge=1, le=MAX_INDEX)],
    to: Annotated[int, Query(ge=1, le=MAX_INDEX)],
    _: Reader,
    veil: Veil,
) -> dict:
    return {"proof": veil.ledger.consistency_proof(frm, to)}

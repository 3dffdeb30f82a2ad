"""The ledger, read-only: entries to their parties; checkpoints, the key and proofs to anyone."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from gateway.auth import Veil
from gateway.authorisation import Allowed
from gateway.schemas import AUTHORISED, errors, example
from services.ledger_access import readable_entries, reader

router = APIRouter(prefix="/v1/ledger", tags=["ledger"])

Reader = Allowed("ledger:read")

MAX_INDEX = 2**53  # beyond any real log, and within every database's integers
NOT_INCLUDED = example("LEDGER_INVALID_RANGE", "an inclusion proof needs 0 <= index < size")
NOT_CONSISTENT = example("LEDGER_INVALID_RANGE", "a consistency proof needs 0 <= from <= to")


class Entry(BaseModel):
    index: int
    leaf_hash: str
    data: str = Field(description="The exact canonical JSON text that was hashed")


class EntryPage(BaseModel):
    items: list[Entry]


class Checkpoint(BaseModel):
    tree_size: int
    root_hash: str
    note: str = Field(description="The signed tree head in the C2SP signed-note format")


class PublicKey(BaseModel):
    name: str
    public_key: str


class InclusionProof(BaseModel):
    audit_path: list[str]


class ConsistencyProof(BaseModel):
    proof: list[str]


@router.get("/entries", responses=errors(*AUTHORISED, 422))
def entries(
    permit: Reader,
    veil: Veil,
    after: Annotated[int | None, Query(ge=-1, le=MAX_INDEX)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EntryPage:
    """The entries the caller is a party to, oldest first: up to `limit` after index `after`."""
    items = readable_entries(veil, reader(veil, permit.caller), after, limit)
    return EntryPage(
        items=[Entry(index=e.index, leaf_hash=e.leaf_hash, data=e.data) for e in items]
    )


# Checkpoints, the key and proofs are public, with no key: anyone holding a receipt can
# verify it. They name no entry's content.


@router.get("/checkpoint", responses=errors(503))
def checkpoint(veil: Veil) -> Checkpoint:
    current = veil.ledger.checkpoint()
    return Checkpoint(tree_size=current.tree_size, root_hash=current.root_hash, note=current.note)


@router.get("/public-key")
def public_key(veil: Veil) -> PublicKey:
    name, key = veil.ledger.public_key()
    return PublicKey(name=name, public_key=key)


@router.get("/proof/inclusion", responses=errors(422, 503, examples={422: NOT_INCLUDED}))
def inclusion(
    index: Annotated[int, Query(ge=0, le=MAX_INDEX)],
    size: Annotated[int, Query(ge=1, le=MAX_INDEX)],
    veil: Veil,
) -> InclusionProof:
    return InclusionProof(audit_path=veil.ledger.inclusion_proof(index, size))


@router.get("/proof/consistency", responses=errors(422, 503, examples={422: NOT_CONSISTENT}))
def consistency(
    frm: Annotated[int, Query(alias="from", ge=1, le=MAX_INDEX)],
    to: Annotated[int, Query(ge=1, le=MAX_INDEX)],
    veil: Veil,
) -> ConsistencyProof:
    return ConsistencyProof(proof=veil.ledger.consistency_proof(frm, to))

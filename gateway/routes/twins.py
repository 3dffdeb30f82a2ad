"""Synthetic twins: an asset's schema with made-up rows, to write queries and jobs against
without seeing a record."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response

from gateway.auth import Caller, Veil
from gateway.authorisation import scoped
from gateway.schemas import AUTHORISED, errors, example
from sandbox.twin import MAX_ROWS
from services.authorisation import Permit
from services.twins import MEDIA_TYPES, SCOPE, authorise_twin, twin_file

router = APIRouter(prefix="/v1/assets", tags=["twins"])


@scoped(SCOPE)
def twin_permit(asset_id: str, caller: Caller, veil: Veil) -> Permit:
    """A developer with an active grant on the asset, its provider, supervisors, operators."""
    return authorise_twin(veil, caller=caller, asset_id=asset_id)


@router.get(
    "/{asset_id}/twin",
    response_class=Response,
    responses={
        200: {
            "description": "Synthetic rows true to the card: no record of the asset",
            "content": {media: {"schema": {"type": "string", "format": "binary"}}
                        for media in MEDIA_TYPES.values()},
        },
        **errors(*AUTHORISED, 404, 410, 422, examples={
            403: example("POLICY_DENIED", "the policy does not allow twin:read",
                         ("asset_not_granted", None)),
            404: example("NOT_FOUND", "no such asset"),
        }),
    },
)  # fmt: skip
def twin(
    asset_id: str,
    permit: Annotated[Permit, Depends(twin_permit)],
    veil: Veil,
    file_format: Annotated[Literal["csv", "parquet"], Query(alias="format")] = "csv",
    rows: Annotated[int | None, Query(ge=1, le=MAX_ROWS)] = None,
) -> Response:
    made = twin_file(veil, permit=permit, asset_id=asset_id, file_format=file_format, rows=rows)
    headers = {
        "Content-Disposition": f'attachment; filename="{made.filename}"',
        "X-Veil-Synthetic": "true",
        "X-Veil-Twin": f"mode={made.mode}; epsilon={made.epsilon:g}; rows={made.rows}",
    }
    return Response(made.content, media_type=made.media_type, headers=headers)

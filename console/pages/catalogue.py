"""The home page and the catalogue: every asset's card, and which columns may be used how."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from console.refusals import REFUSED
from console.render import page, refused
from console.visitors import Veil, Viewer
from sandbox.cards import Role
from sandbox.store import DestroyedAsset
from services import assets
from services.authorisation import assets_resource, authorise, card_resource

router = APIRouter(prefix="/console")

# What each column role lets a query do, as the catalogue explains it.
USES = {
    Role.DIMENSION: "group by, filter, show",
    Role.MEASURE: "aggregate (COUNT, SUM, AVG, MEDIAN) within its bounds",
    Role.PRIVACY_UNIT: "COUNT(DISTINCT …) and joins on the privacy unit; never shown",
    Role.JOIN_KEY: "join on another join key; never shown",
    Role.FILTER_ONLY: "filter only; never shown or grouped",
    Role.IDENTIFIER: "never used",
}


@router.get("")
def home(request: Request, visitor: Viewer, veil: Veil) -> Response:
    """What this principal can do next, by role."""
    return page(request, "home.html", visitor)


@router.get("/assets")
def catalogue(request: Request, visitor: Viewer, veil: Veil, mine: str | None = None) -> Response:
    """Every asset; with `mine`, a provider's own."""
    try:
        authorise(veil, caller=visitor.principal, scope="catalog:read", resource={})
    except REFUSED as exc:
        return refused(request, visitor, exc)
    entries = [assets.asset_view(entry) for entry in assets.catalogue(veil)]
    if mine:
        entries = [entry for entry in entries if entry["provider"] == visitor.principal.id]
    return page(request, "catalogue.html", visitor, entries=entries, mine=bool(mine))


@router.get("/assets/{asset_id}")
def asset(asset_id: str, request: Request, visitor: Viewer, veil: Veil) -> Response:
    try:
        entry = assets.catalogued(veil, asset_id=asset_id)
        resource = (
            card_resource(entry.card, status="destroyed")
            if isinstance(entry, DestroyedAsset)
            else assets_resource(veil, [entry.card])
        )
        authorise(veil, caller=visitor.principal, scope="catalog:read", resource=resource)
    except REFUSED as exc:
        return refused(request, visitor, exc)
    versions = [] if isinstance(entry, DestroyedAsset) else veil.enclave.store.history(asset_id)
    return page(request, "asset.html", visitor, asset=assets.asset_view(entry), uses=USES,
                versions=versions)  # fmt: skip


def _refused(request: Request, visitor: Viewer, exc: Exception) -> Response:
    return refused(request, visitor, exc)

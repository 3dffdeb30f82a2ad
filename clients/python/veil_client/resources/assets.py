"""`veil.assets`: the catalogue, registration with a data file, versions and destruction."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from veil_client.models import Asset, AssetVersion, Destruction, parsed
from veil_client.transport import Transport

Card = Mapping[str, Any] | str | Path
DataFile = str | Path | bytes


class Assets:
    def __init__(self, transport: Transport) -> None:
        self._http = transport

    def list(self) -> list[Asset]:
        """Every asset, destroyed ones as `lifecycle: destroyed`."""
        return parsed(list[Asset], self._http.get("/v1/assets")["items"])

    def get(self, asset_id: str) -> Asset:
        return parsed(Asset, self._http.get(f"/v1/assets/{asset_id}"))

    def versions(self, asset_id: str) -> list[AssetVersion]:
        """Every card the asset has had, oldest first."""
        return parsed(
            list[AssetVersion], self._http.get(f"/v1/assets/{asset_id}/versions")["items"]
        )

    def twin(self, asset_id: str, format: str = "parquet", rows: int | None = None) -> bytes:
        """The asset's synthetic twin (CSV or Parquet): its card's shape, no real record."""
        params = {"format": format, "rows": rows}
        return self._http.get_bytes(f"/v1/assets/{asset_id}/twin", params)

    def register(self, card: Card, file: DataFile) -> Asset:
        """Register a card (a mapping, or a path to its JSON) with its CSV or Parquet file."""
        return parsed(Asset, self._upload("/v1/assets", card, file))

    def add_version(self, asset_id: str, card: Card, file: DataFile) -> Asset:
        """New data for an asset: the next version, under a new data key."""
        return parsed(Asset, self._upload(f"/v1/assets/{asset_id}/versions", card, file))

    def destroy(self, asset_id: str, reason: str) -> Destruction:
        """Crypto-shred the asset (operators): its data can never be read again."""
        return parsed(Destruction, self._http.delete(f"/v1/assets/{asset_id}", {"reason": reason}))

    def _upload(self, path: str, card: Card, file: DataFile) -> Any:
        text = card_text(card)
        name, content = _data(file)
        return self._http.post(path, data={"card": text}, files=lambda: {"file": (name, content)})


def card_text(card: Card) -> str:
    """The card as JSON text: a mapping is encoded, a path read."""
    if isinstance(card, Mapping):
        return json.dumps(card)
    return Path(card).read_text(encoding="utf-8")


def _data(file: DataFile) -> tuple[str, bytes]:
    if isinstance(file, bytes):
        return "data", file
    path = Path(file)
    return path.name, path.read_bytes()

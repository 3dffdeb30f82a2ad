"""Synthetic twins: who may download one, the provider's ε spent once per data version and
recorded before anything is released, and the file itself."""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

from governance import Principal, utc_now
from sandbox.cards import AssetCard
from sandbox.errors import AssetGone, Violation
from sandbox.store import StoredAsset, catalog_name
from sandbox.twin import MAX_ROWS, Marginals, measure, measured_columns, synthesise, write
from sandbox.twin_store import TwinStore
from services.authorisation import Permit, assets_resource, decide, refuse
from services.runtime import Services

SCOPE = "twin:read"
MEDIA_TYPES = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}
MECHANISM = "laplace histograms per column (OpenDP), rows sampled from them"


@dataclass(frozen=True)
class TwinFile:
    content: bytes
    media_type: str
    filename: str
    # "dp": drawn from histograms released under the provider's ε; "public": from the card.
    mode: str
    epsilon: float
    rows: int


def authorise_twin(veil: Services, *, caller: Principal, asset_id: str) -> Permit:
    """Decide twin:read on the asset with the caller's grants; a denial is recorded, then
    raised."""
    if asset_id in veil.enclave.store.destroyed():  # as a query naming it is answered
        raise AssetGone("the asset was destroyed", [Violation("asset_destroyed")])
    card = veil.enclave.store.get(asset_id).card  # NOT_FOUND for an unknown asset
    veil.expire_grants()
    resource = assets_resource(veil, [card])
    grants = [grant.as_input() for grant in veil.control.grants_of(caller.id)]
    decision = decide(veil, caller, SCOPE, resource, {}, grants)
    if not decision.allow:
        refuse(veil, caller, SCOPE, decision, resource)
    return Permit(caller, SCOPE, decision)


def twin_file(
    veil: Services, *, permit: Permit, asset_id: str, file_format: str, rows: int | None
) -> TwinFile:
    """The asset's twin with `rows` rows (its public row count by default, at most MAX_ROWS),
    as CSV or Parquet; each download is recorded."""
    stored = veil.enclave.store.get(asset_id)
    marginals = _visible(_marginals(veil, stored), _covered(veil, permit.caller, stored.card))
    count = min(rows or stored.row_count, MAX_ROWS)
    seed = int.from_bytes(hashlib.sha256(f"{asset_id}:{stored.version}".encode()).digest()[:8])
    with veil.twin_downloads.hold(permit.caller.id):
        table = synthesise(stored.card, marginals, count, seed)
        with tempfile.TemporaryDirectory(prefix="veil-twin-") as folder:
            target = Path(folder) / f"twin.{file_format}"
            write(stored.card, table, target, file_format)
            content = target.read_bytes()
    mode = "public" if marginals is None else "dp"
    epsilon = 0.0 if marginals is None else marginals.epsilon
    veil.ledger.append(
        {"type": "twin_download", "principal": permit.caller.id, "asset": asset_id,
         "version": stored.version, "mode": mode, "rows": count, "format": file_format,
         "decision_id": permit.decision.decision_id, "at": utc_now()},
        idempotency_key="twin:download:" + uuid.uuid4().hex,
    )  # fmt: skip
    filename = f"{asset_id}.twin.{file_format}"
    return TwinFile(content, MEDIA_TYPES[file_format], filename, mode, epsilon, count)


def _covered(veil: Services, caller: Principal, card: AssetCard) -> set[str] | None:
    """The columns whose released histograms the caller may draw from: all (None) for the
    asset's provider and overseers, else those its grants in force cover, as a query reads."""
    if caller.has("operator", "supervisor") or caller.id == card.provider:
        return None
    now = utc_now()
    in_force = [grant for grant in veil.control.grants_of(caller.id) if grant.in_force(now)]
    return {
        column.name
        for column in card.columns
        if any(grant.covers(card.id, column.name) for grant in in_force)
    }


def _visible(marginals: Marginals | None, covered: set[str] | None) -> Marginals | None:
    """Only covered columns follow their histograms; the others are drawn from the card."""
    if marginals is None or covered is None:
        return marginals
    weights = {name: w for name, w in marginals.weights.items() if name in covered}
    return replace(marginals, weights=weights)


def _marginals(veil: Services, stored: StoredAsset) -> Marginals | None:
    """The version's released histograms: kept from its first twin, or measured now under the
    card's twin ε and recorded before they are kept. None without a twin ε (the public twin)."""
    card = stored.card
    if card.twin is None or not measured_columns(card):
        return None
    twins = TwinStore(veil.enclave.store)
    with twins.making(card.id):
        kept = twins.load(card.id, stored.version)
        if kept is not None:
            return kept

        def run(sql: str) -> list[list]:
            return veil.enclave.pool.run(sql).rows

        marginals = measure(card, catalog_name(card.id), card.twin.epsilon, run)
        veil.ledger.append(
            {"type": "twin_budget_spent", "asset": card.id, "version": stored.version,
             "provider": card.provider, "epsilon": marginals.epsilon, "delta": 0.0,
             "mechanism": MECHANISM, "rows_per_unit": marginals.rows_per_unit,
             "columns": sorted(marginals.weights), "at": utc_now()},
            idempotency_key=f"twin:{card.id}:v{stored.version}",
        )  # fmt: skip
        twins.save(card.id, stored.version, marginals)
        return marginals

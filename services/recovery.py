"""What a crash left half done, finished before anything is served: asset changes made in the
store whose ledger entries were never written."""

from __future__ import annotations

import logging

from ledger import Ledger
from sandbox.store import AssetStore

log = logging.getLogger(__name__)


def record_unrecorded(store: AssetStore, ledger: Ledger) -> list[str]:
    """Write the entry kept with each asset change its process did not live to record (under
    its own idempotency key, so once however often this runs), then serve the asset; returns
    the assets recorded now."""
    recorded = []
    for asset_id, kept in store.unrecorded().items():
        ledger.append(kept["entry"], idempotency_key=kept["key"])
        store.recorded(asset_id)
        log.warning("asset %s: a change made before a crash is now on record", asset_id)
        recorded.append(asset_id)
    return recorded

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
    the assets recorded now. Only a record sealed under the master key is written: one that
    is not (put there by someone without the key) is left, and its asset unserved."""
    recorded = []
    for asset_id, kept in store.unrecorded().items():
        ledger.append(kept["entry"], idempotency_key=kept["key"])
        store.recorded(asset_id)
        log.warning("asset %s: a change made before a crash is now on record", asset_id)
        recorded.append(asset_id)
    for asset_id in store.unsealed():
        log.error(
            "asset %s: its data folder keeps a change record that is not sealed under the master "
            "key; it is not written to the ledger and the asset is not served",
            asset_id,
        )
    return recorded

"""Which ledger entries a caller may read: the parties to each entry; overseers read them all.

A developer reads its own entries, a provider those about its assets and the grants it
approves. A job held for review is its reviewers' until they decide: its developer reads
its submission, its fixed charge and the decision, never its run (queries, metering, gate).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

from governance import Principal
from ledger import Entry, parties
from services.job_runs import HELD_OUTCOME
from services.runtime import Services

OVERSEERS = ("supervisor", "operator", "admin")
# What a held job's developer may read about it: what it sent, and a reviewer's decision.
HELD_READABLE = frozenset({"job_submitted"})
SCAN_BATCH = 1000

Readable = Callable[[dict], bool]


def reader(veil: Services, caller: Principal) -> Readable:
    """Whether `caller` may read an entry, given the entry's parsed data."""
    if caller.has(*OVERSEERS):
        return lambda data: True
    store = veil.enclave.store
    # Destroyed assets count too: their use stays the provider's to trace.
    cards = {**store.cards(), **{a: gone.card for a, gone in store.destroyed().items()}}
    provided = {asset for asset, card in cards.items() if card.provider == caller.id}
    grants = {
        grant.id
        for grant in veil.control.grants()
        if grant.developer == caller.id or caller.id in grant.required_parties
    }
    held = {job.id for job in veil.job_records.held_of(caller.id)}

    def readable(data: dict) -> bool:
        if data.get("job_id") in held and not _after_review(data):
            return False
        named = parties(data)
        return (
            named.public
            or caller.id in named.principals
            or bool(named.assets & provided)
            or bool(named.grants & grants)
        )

    return readable


def readable_entries(
    veil: Services, readable: Readable, after: int | None, limit: int
) -> list[Entry]:
    """Up to `limit` entries `readable` admits, after index `after`, skipping the others."""
    found: list[Entry] = []
    for entry, data in _scan(veil, after):
        if readable(data):
            found.append(entry)
            if len(found) == limit:
                break
    return found


def _scan(veil: Services, after: int | None) -> Iterator[tuple[Entry, dict]]:
    while batch := veil.ledger.entries(after=after, limit=SCAN_BATCH):
        for entry in batch:
            yield entry, json.loads(entry.data)
        after = batch[-1].index


def _after_review(data: dict) -> bool:
    kind = data.get("type")
    return (
        kind in HELD_READABLE
        or (kind == "job_release" and data.get("by") != "gate")
        or (kind == "job" and data.get("outcome") == HELD_OUTCOME)
    )

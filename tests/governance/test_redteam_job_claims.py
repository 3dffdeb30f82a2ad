"""Red team, the durable queue's claims on SQLite and PostgreSQL: slots of two processes racing
for one developer's jobs never start more than its share, nor any job twice."""

from __future__ import annotations

import threading
from collections import Counter

from governance import ControlStore
from governance.job_records import JobRecords

GRANT = {"developer": "a", "assets": ["a.one"], "purpose": "research", "methods": ["job"],
         "valid_from": "2026-01-01T00:00:00Z", "valid_until": "2099-01-01T00:00:00Z"}  # fmt: skip
SHARE, QUEUED, SLOTS = 2, 8, 6


def test_racing_slots_of_two_processes_start_no_more_than_a_developers_share(store) -> None:
    """Held: claims are serialised in both stores, so however the slots interleave, the
    developer's jobs started are exactly its share and each job starts once."""
    grant = store.create_grant(GRANT, ["prov"])
    here = JobRecords(store.engine)
    for _ in range(QUEUED):
        job = here.create("a", grant.id, "x = 1", reviewers=["prov"], review=[],
                          price_plan="standard")  # fmt: skip
        here.open(job.id)
    there = JobRecords(ControlStore(str(store.engine.url)).engine)
    started: list[str] = []
    lock = threading.Lock()
    ready = threading.Barrier(SLOTS)

    def slot(records: JobRecords, owner: str) -> None:
        ready.wait()
        for _ in range(QUEUED):
            claimed = records.claim(owner, per_principal=SHARE, lease_s=300)
            if claimed is not None:
                with lock:
                    started.append(claimed.id)

    threads = [
        threading.Thread(target=slot, args=(records, f"p{n % 2}"))
        for n, records in enumerate([here, there] * (SLOTS // 2))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(started) == SHARE and max(Counter(started).values()) == 1, started
    there.engine.dispose()

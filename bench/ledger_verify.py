"""Ledger verification: a full pass against an incremental one from the verified prefix.

Run: .venv/bin/python bench/ledger_verify.py --out /tmp/ledger-verify
     [--sizes 100000,1000000] [--new 1000] [--rehash-entries 20000]
Prints a table and writes ledger_verify.json into the --out folder.

For each size, a SQLite store of that many query-like entries is built directly (as
bench/ledger_throughput.py does: same canonical text, leaf hashes, one signed checkpoint at the
end). Then, in order: `Ledger.verify()` (the full verification `veil ledger verify` runs); the
first `verify_incremental()`, which finds no verified prefix, verifies everything and stores
one; --new appends through `Ledger.append` (8 threads, group-committed, a checkpoint a batch);
a fresh `Ledger.open`, as after a restart; `verify_incremental()` again, which recomputes the
new entries only; once more with nothing new; and one slice of the background re-hash.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from environment import git_state, machine
from ledger_throughput import ORIGIN, build_store, query_entry, versions

from ledger import Ledger, generate_signing_key
from services.ledger_watch import REHASH_ENTRIES

THREADS = 8


def timed(run: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = run()
    return result, round(time.perf_counter() - started, 3)


def append_new(log: Ledger, first: int, count: int) -> None:
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(lambda i: log.append(*query_entry(i)), range(first, first + count)))


def run_size(folder: Path, key: Path, size: int, new: int, rehash_entries: int) -> dict[str, Any]:
    path = folder / f"verify-{size}.db"
    url = f"sqlite:///{path}"
    build_s = build_store(url, key, size)
    log, open_s = timed(lambda: Ledger.open(url, key, origin=ORIGIN))
    full, full_s = timed(log.verify)
    assert full.ok and full.tree_size == size, full.problems
    first, first_s = timed(log.verify_incremental)
    assert first.ok and first.recorded and first.hashed == size, first
    _, append_s = timed(lambda: append_new(log, size, new))
    log.close()
    log, reopen_s = timed(lambda: Ledger.open(url, key, origin=ORIGIN))
    after, incremental_s = timed(log.verify_incremental)
    assert after.ok and after.full_because is None, after
    assert (after.verified_from, after.hashed) == (size, new), after
    idle, idle_s = timed(log.verify_incremental)
    assert idle.ok and idle.hashed == 0, idle
    (_, problems, hashed), rehash_s = timed(lambda: log.rehash(None, rehash_entries))
    assert not problems and hashed == min(rehash_entries, size + new), (problems, hashed)
    log.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return {
        "entries": size,
        "new_entries": new,
        "build_seconds": round(build_s, 1),
        "open_seconds": open_s,
        "full_verify_seconds": full_s,
        "first_incremental_seconds": first_s,
        "append_seconds": append_s,
        "reopen_seconds": reopen_s,
        "incremental_seconds": incremental_s,
        "incremental_entries_hashed": after.hashed,
        "incremental_nothing_new_seconds": idle_s,
        "rehash_slice_entries": hashed,
        "rehash_slice_seconds": rehash_s,
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    header = (
        f"{'entries':>10}{'full s':>9}{'first inc s':>13}{'new':>6}{'incr s':>9}"
        f"{'idle s':>9}{'open s':>9}{'rehash s':>10}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['entries']:>10,}{row['full_verify_seconds']:>9.2f}"
            f"{row['first_incremental_seconds']:>13.2f}"
            f"{row['new_entries']:>6}{row['incremental_seconds']:>9.3f}"
            f"{row['incremental_nothing_new_seconds']:>9.3f}{row['reopen_seconds']:>9.2f}"
            f"{row['rehash_slice_seconds']:>10.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for ledger_verify.json")
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated log sizes")
    parser.add_argument("--new", type=int, default=1_000, help="entries appended after the prefix")
    parser.add_argument("--rehash-entries", type=int, default=REHASH_ENTRIES)
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="veil-bench-") as name:
        folder = Path(name)
        key = folder / "ledger.key"
        generate_signing_key(key)
        for size in sizes:
            print(f"{size:,} entries", flush=True)
            rows.append(run_size(folder, key, size, args.new, args.rehash_entries))
    report = {
        "command": " ".join(["python", "bench/ledger_verify.py", *sys.argv[1:]]),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        "git": git_state(),
        "notes": [
            "SQLite (WAL, synchronous=FULL), a file in the temp dir; one process",
            "full: Ledger.verify(), what `veil ledger verify` runs; incremental: "
            "Ledger.verify_incremental() after a fresh Ledger.open, what a gateway's start-up "
            "and background checks run",
            f"new entries appended by {THREADS} threads through Ledger.append",
            "first_incremental_seconds: the first check, which finds no verified prefix, "
            "verifies in full and stores one",
            "open_seconds/reopen_seconds: Ledger.open, outside verification",
        ],
        "results": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ledger_verify.json").write_text(json.dumps(report, indent=2) + "\n")
    print_table(rows)


if __name__ == "__main__":
    main()

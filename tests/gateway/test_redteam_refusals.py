"""Red team, refusal summaries over HTTP: what a prober past its rate can read of other
principals in its summaries, and whether it can choose which provider's traces disappear."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.support import Server, start_server, stop_server

# One refusal per principal appended one by one, the rest summarised; a day's window, so only
# the shutdown writes the summaries (midnight, UTC, splits them, which the checks allow for).
ENV = {"VEIL_REFUSAL_SUMMARY_LIMIT": "1", "VEIL_REFUSAL_SUMMARY_WINDOW_S": "86400"}
REJECTED = "SELECT patient_name FROM hospital.visits"  # the guard: an identifier column
DENIED = "SELECT COUNT(*) AS n FROM hospital.visits"  # the policy: no grant covers it
ASSET = "hospital.visits"
# services/refusals.py MAX_GROUPS: party groups one principal's window keeps apart.
GROUPS = 16
PROBES = 3
SUMMARY = "refusals_summarised"


def _developer(server: Server, name: str) -> None:
    with server.client("admin") as admin:
        made = admin.post("/v1/principals",
                          json={"id": name, "roles": ["developer"], "org": f"{name} Ltd"})  # fmt: skip
    assert made.status_code == 201, made.json()
    server.keys[name] = made.json()["api_key"]


def _refused(server: Server, who: str, sql: str, grant_id: str | None = None) -> None:
    body = {"sql": sql, **({"grant_id": grant_id} if grant_id else {})}
    with server.client(who) as client:
        answer = client.post("/v1/queries", json=body)
    assert answer.status_code in (403, 422), answer.text


def _entries(server: Server, who: str) -> list[dict]:
    items: list[dict] = []
    with server.client(who) as client:
        while page := client.get(
            "/v1/ledger/entries",
            params={"limit": 1000, **({"after": items[-1]["index"]} if items else {})},
        ).json()["items"]:
            items += page
    return [json.loads(item["data"]) for item in items]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("redteam-refusals") / "home"
    server = start_server(home, env=ENV)
    keys = dict(server.keys)
    try:
        for name in ("mallory", "bystander", "prober"):
            _developer(server, name)
        keys = dict(server.keys)
        # Mallory opens a group, the bystander three, then mallory another.
        _refused(server, "mallory", REJECTED)
        _refused(server, "mallory", REJECTED)
        _refused(server, "bystander", REJECTED)
        for n in range(3):
            _refused(server, "bystander", REJECTED, grant_id=f"g_bystander_{n}")
        _refused(server, "mallory", DENIED)
        # The prober spends its one appended refusal, fills its window's groups with grants
        # nobody holds, then probes the hospital's asset.
        _refused(server, "prober", REJECTED)
        for n in range(GROUPS):
            _refused(server, "prober", REJECTED, grant_id=f"g_nobody_{n}")
        for _ in range(PROBES):
            _refused(server, "prober", DENIED)
    finally:
        stop_server(server)  # writes the open windows' summaries
    server = start_server(home, env=ENV, command="serve")
    server.keys.update(keys)
    yield server
    stop_server(server)


def test_a_summarys_key_counts_nothing_of_other_principals(server: Server) -> None:
    """Found: each summary's idempotency key (hashed into the entry its principal reads) ended in
    a counter shared by every principal's summary groups in the process, so the gap between two
    of one's own summaries counted the groups others opened in between: who else was refused
    past their rate, and how widely. Fixed in services/refusals.py (a random nonce)."""
    summaries = [e for e in _entries(server, "mallory") if e["type"] == SUMMARY]
    assert len(summaries) >= 2, summaries
    assert all(summary["principal"] == "mallory" for summary in summaries)
    tails = [summary["idempotency_key"].rsplit(":", 1)[1] for summary in summaries]
    numbers = sorted(int(tail) for tail in tails if tail.isdigit())
    if numbers:  # numbered, only mallory's own groups may count: the bystander's 3 must not show
        assert numbers == list(range(len(numbers))), tails


def _traced(entries: list[dict], who: str) -> int:
    """How many of `who`'s refusals naming ASSET the entries show, one by one or counted."""
    single = sum(
        1
        for entry in entries
        if entry.get("principal") == who
        and entry["type"] in ("query", "access_denied")
        and entry.get("outcome", "denied") in ("denied", "rejected")
        and ASSET in (entry.get("assets") or [])
    )
    counted = sum(
        entry["refusals"]
        for entry in entries
        if entry["type"] == SUMMARY
        and entry["principal"] == who
        and ASSET in entry.get("assets", [])
    )
    return single + counted


def test_the_supervisor_counts_every_probe(server: Server) -> None:
    """Held: the folded probes are counted in a summary an overseer reads."""
    summaries = [
        e
        for e in _entries(server, "supervisor")
        if e["type"] == SUMMARY and e["principal"] == "prober"
    ]
    assert sum(summary["refusals"] for summary in summaries) == GROUPS + PROBES
    assert sum(summary.get("folded", 0) for summary in summaries) >= PROBES


def test_a_prober_cannot_hide_its_probes_from_the_assets_provider(server: Server) -> None:
    """Every refusal of a request naming the hospital's asset reaches the hospital: one by one
    or counted in a summary naming the asset, however many other groups the prober opened.

    Found: a prober past its rate filled its window's 16 party groups (grant ids nobody holds
    do) and its refusals on any provider's asset were then folded into the summary that names
    no party, which that provider cannot read. Fixed in services/refusals.py: past the cap, a
    refusal naming registered assets is counted in a summary naming one of them (one per asset
    and window at most) and noted in each other's."""
    assert _traced(_entries(server, "city-hospital"), "prober") == PROBES

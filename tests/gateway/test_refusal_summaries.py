"""Refusals past a principal's rate, over HTTP: answered exactly as before, but counted into one
summary entry per window instead of each growing the ledger, written when the window closes
(here: at shutdown), readable by the same parties, and counted where refusals are counted."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.support import Server, start_server, stop_server

# Refusals of one principal appended one by one per window; the window is a whole day, so
# only the shutdown writes it (or midnight, UTC, which the checks below allow for).
LIMIT = 4
ENV = {"VEIL_REFUSAL_SUMMARY_LIMIT": str(LIMIT), "VEIL_REFUSAL_SUMMARY_WINDOW_S": "86400"}
ROUNDS = 8
# Party groups the prober's refusals fall in: none named, and hospital.visits.
GROUPS = 2
REJECTED = "SELECT patient_name FROM hospital.visits"  # the guard: an identifier column
DENIED = "SELECT COUNT(*) AS n FROM hospital.visits"  # the policy: no grant covers it
KINDS = {
    ("query", "rejected"): lambda c: c.post("/v1/queries", json={"sql": REJECTED}),
    ("query", "denied"): lambda c: c.post("/v1/queries", json={"sql": DENIED}),
    ("access_denied", "denied"): lambda c: c.post("/v1/policies/reload"),
}
SUMMARY = "refusals_summarised"


@dataclass
class Scenario:
    server: Server
    # Each refusal's answer, by kind, in the order they were made.
    answers: dict[tuple[str, str], list[tuple[int, dict]]]
    verified: subprocess.CompletedProcess


def _developer(server: Server, name: str) -> str:
    with server.client("admin") as admin:
        made = admin.post("/v1/principals",
                          json={"id": name, "roles": ["developer"], "org": f"{name} Ltd"})  # fmt: skip
    assert made.status_code == 201, made.json()
    return made.json()["api_key"]


def _refuse(server: Server, key: str, kind: tuple[str, str]) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
        response = KINDS[kind](client)
    assert response.status_code in (403, 422), response.text
    return response.status_code, response.json()


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    home = tmp_path_factory.mktemp("refusal-summaries") / "home"
    server = start_server(home, env=ENV)
    keys = {name: _developer(server, name) for name in ("mallory", "bystander")}
    answers: dict[tuple[str, str], list[tuple[int, dict]]] = {kind: [] for kind in KINDS}
    try:
        for _ in range(ROUNDS):
            for kind in KINDS:
                answers[kind].append(_refuse(server, keys["mallory"], kind))
        for kind in KINDS:  # within the limit
            _refuse(server, keys["bystander"], kind)
    finally:
        stop_server(server)  # closes the open windows: their summaries are written
    verified = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "ledger", "verify", "--home", str(home)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    server = start_server(home, env=ENV, command="serve")
    server.keys.update(keys)
    yield Scenario(server, answers, verified)
    stop_server(server)


def _entries(server: Server, who: str) -> list[dict]:
    items: list[dict] = []
    with server.client(who) as client:
        while page := client.get(
            "/v1/ledger/entries",
            params={"limit": 1000, **({"after": items[-1]["index"]} if items else {})},
        ).json()["items"]:
            items += page
    return [json.loads(item["data"]) for item in items]


def _refusals(entries: list[dict], principal: str) -> tuple[list[dict], list[dict]]:
    """`principal`'s refusals appended one by one, and its summaries."""
    own = [entry for entry in entries if entry.get("principal") == principal]
    single = [
        entry
        for entry in own
        if entry["type"] == "access_denied"
        or (entry["type"] == "query" and entry.get("outcome") in ("rejected", "denied"))
    ]
    return single, [entry for entry in own if entry["type"] == SUMMARY]


def _windows(summaries: list[dict]) -> int:
    return len({summary["window"]["start"] for summary in summaries})


def _kind(entry: dict) -> tuple[str, str]:
    return entry["type"], entry.get("outcome", "denied")


def test_refusals_past_the_limit_grow_the_ledger_by_a_bounded_number(scenario: Scenario) -> None:
    single, summaries = _refusals(_entries(scenario.server, "supervisor"), "mallory")
    made = ROUNDS * len(KINDS)
    assert summaries, "no refusal was summarised"
    windows = _windows(summaries)
    assert len(single) <= LIMIT * windows
    assert len(summaries) <= GROUPS * windows
    assert len(single) + len(summaries) <= (LIMIT + GROUPS) * windows < made
    assert len(single) + sum(summary["refusals"] for summary in summaries) == made


def test_a_summary_counts_exactly_the_refusals_made_by_scope_and_reason(
    scenario: Scenario,
) -> None:
    single, summaries = _refusals(_entries(scenario.server, "supervisor"), "mallory")
    assert summaries
    counted = Counter(_kind(entry) for entry in single)
    reasons: dict[tuple[str, str], Counter[str]] = {kind: Counter() for kind in KINDS}
    for entry in single:
        codes = entry.get("rules") or entry.get("reasons") or entry["decision"]["reasons"]
        reasons[_kind(entry)].update(codes)
    for summary in summaries:
        assert sum(row["refusals"] for row in summary["counts"]) == summary["refusals"]
        for row in summary["counts"]:
            kind = (row["record"], row["outcome"])
            counted[kind] += row["refusals"]
            reasons[kind].update(row["reasons"])
            scope = "policy:reload" if row["record"] == "access_denied" else "query:run"
            assert row["scope"] == scope
    assert counted == {kind: ROUNDS for kind in KINDS}
    # Each request was refused for the same reasons every time: the counts say so exactly.
    assert all(set(codes.values()) == {ROUNDS} for codes in reasons.values()), reasons


def test_a_summarised_refusal_is_answered_exactly_as_an_appended_one(scenario: Scenario) -> None:
    single, summaries = _refusals(_entries(scenario.server, "supervisor"), "mallory")
    kinds_summarised = {(row["record"], row["outcome"]) for s in summaries for row in s["counts"]}
    kinds_appended = {_kind(entry) for entry in single}
    # Every kind was both appended and summarised, so its answers compare the two.
    assert kinds_summarised == kinds_appended == set(KINDS)
    for kind, answers in scenario.answers.items():
        assert len(answers) == ROUNDS
        assert all(answer == answers[0] for answer in answers), kind


def test_another_principal_is_not_summarised_with_the_prober(scenario: Scenario) -> None:
    entries = _entries(scenario.server, "supervisor")
    single, summaries = _refusals(entries, "bystander")
    assert sorted(_kind(entry) for entry in single) == sorted(KINDS)
    assert summaries == []
    assert _refusals(entries, "mallory")[1], "the prober was not summarised"


def test_summaries_are_read_by_the_parties_to_the_refusals_they_count(
    scenario: Scenario,
) -> None:
    server = scenario.server
    every = _refusals(_entries(server, "supervisor"), "mallory")[1]
    assert {tuple(s.get("assets", ())) for s in every} == {(), ("hospital.visits",)}
    seen = {
        who: [tuple(s.get("assets", ())) for s in _refusals(_entries(server, who), "mallory")[1]]
        for who in ("mallory", "city-hospital", "insurer", "bystander", "operator")
    }
    assert sorted(seen["mallory"]) == sorted(tuple(s.get("assets", ())) for s in every)
    assert sorted(seen["operator"]) == sorted(seen["mallory"])
    # The provider reads the summary of refusals naming its asset, as it read each of them.
    assert set(seen["city-hospital"]) == {("hospital.visits",)}
    single = _refusals(_entries(server, "city-hospital"), "mallory")[0]
    assert single and all(entry.get("assets") == ["hospital.visits"] for entry in single)
    assert seen["insurer"] == [] and seen["bystander"] == []


def test_usage_counts_summarised_refusals_with_their_outcome(scenario: Scenario) -> None:
    with scenario.server.client("mallory") as client:
        usage = client.get("/v1/usage", params={"limit": 1000}).json()
    assert usage["outcomes"] == {"rejected": ROUNDS, "denied": ROUNDS}
    # Fewer lines than refusals: the rest are counted from the summaries.
    assert len(usage["items"]) < 2 * ROUNDS


def test_the_ledger_with_its_summaries_verifies(scenario: Scenario) -> None:
    assert scenario.verified.returncode == 0, scenario.verified.stdout + scenario.verified.stderr
    assert _refusals(_entries(scenario.server, "supervisor"), "mallory")[1]

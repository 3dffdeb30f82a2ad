"""What supervisors see at /metrics: stage latencies, refusals and spikes, rows, revenue, the
enclave's workers, the ledger's health and storage, counted as the requests really went."""

from __future__ import annotations

import re
import shutil
import subprocess
import time

import httpx
import pytest

from tests.deploy.test_monitoring import METRICS
from tests.support import Server, register_households, start_server, stop_server

RELEASED = "SELECT district, COUNT(*) AS visits FROM hospital.visits GROUP BY district"
PAID = "SELECT plan, COUNT(*) AS claims FROM insurance.claims GROUP BY plan"
IDENTIFYING = "SELECT patient_name FROM hospital.visits"
# Refusals of one principal within the window beyond which it counts as a spike.
LIMIT = 3


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    started = start_server(
        tmp_path_factory.mktemp("metrics") / "home",
        env={"VEIL_REFUSAL_LIMIT": str(LIMIT), "VEIL_LEDGER_VERIFY_INTERVAL_S": "1"},
    )
    yield started
    stop_server(started)


def scrape(server: Server) -> str:
    return server.metrics()


def sample(text: str, name: str, labels: str = "") -> float:
    """One sample's value; 0 when the series does not exist yet."""
    selector = rf"\{{{labels}\}}" if labels else ""
    match = re.search(rf"^{name}{selector} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_metrics_open_to_the_metrics_token_only(server: Server) -> None:
    """Metrics count every tenant's activity (queries by outcome, rows, suppressed groups), so
    no principal's API key opens them, not even an overseer's; only Prometheus's token does."""
    tokens = [None, "not-the-token", *server.keys.values()]
    token = (server.home / "keys" / "metrics.token").read_text().strip()
    tokens += [token[:-1], token + "x", token.upper() if token.upper() != token else token[1:]]
    for sent in tokens:
        headers = {"Authorization": f"Bearer {sent}"} if sent is not None else {}
        refused = httpx.get(f"{server.url}/metrics", headers=headers, timeout=30)
        assert refused.status_code == 401, sent
        assert refused.json()["error"]["code"] == "UNAUTHENTICATED"
        assert "veil_" not in refused.text
    assert (server.home / "keys" / "metrics.token").stat().st_mode & 0o077 == 0
    assert "veil_queries_total" in server.metrics()


def test_a_configured_metrics_token_replaces_the_file(tmp_path) -> None:
    started = start_server(tmp_path / "home", env={"VEIL_METRICS_TOKEN": "configured-token-1"})
    try:
        headers = {"Authorization": "Bearer configured-token-1"}
        assert "veil_ledger_entries" in httpx.get(f"{started.url}/metrics", headers=headers).text
        assert not (started.home / "keys" / "metrics.token").exists()
        headers = {"Authorization": "Bearer configured-token-2"}
        assert httpx.get(f"{started.url}/metrics", headers=headers).status_code == 401
    finally:
        stop_server(started)


def test_a_query_is_timed_in_every_stage(server: Server) -> None:
    before = scrape(server)
    assert server.query(RELEASED).status_code == 200
    after = scrape(server)
    for stage in ("authentication", "policy", "guard", "execution", "ledger"):
        name, labels = "veil_stage_duration_seconds_count", f'stage="{stage}"'
        assert sample(after, name, labels) > sample(before, name, labels), stage


def test_rows_scanned_and_revenue_follow_the_ledger(server: Server) -> None:
    before = scrape(server)
    answers = [server.query(PAID, who="fintech").json() for _ in range(3)]
    after = scrape(server)
    charged = sum(answer["cost"]["amount_minor"] for answer in answers)
    currency = answers[0]["cost"]["currency"]
    assert charged > 0
    revenue = f'currency="{currency}"'
    assert sample(after, "veil_revenue_charged_minor_total", revenue) - sample(
        before, "veil_revenue_charged_minor_total", revenue
    ) == pytest.approx(charged)
    ids = {answer["query_id"] for answer in answers}
    scanned = sum(
        sum(entry["usage"]["rows_scanned"].values())
        for entry in server.ledger()
        if entry.get("query_id") in ids
    )
    assert scanned > 0
    gained = sample(after, "veil_rows_scanned_total") - sample(before, "veil_rows_scanned_total")
    assert gained == pytest.approx(scanned)


def test_refusals_are_counted_by_reason_and_a_spike_once(server: Server) -> None:
    before = scrape(server)
    rejected = [server.query(IDENTIFYING, who="fintech") for _ in range(LIMIT + 2)]
    assert {response.status_code for response in rejected} == {422}
    rule = rejected[0].json()["error"]["violations"][0]["rule"]
    denied = server.query(RELEASED, who="fintech")  # no grant of fintech's covers visits
    assert denied.status_code == 403
    reasons = [violation["rule"] for violation in denied.json()["error"]["violations"]]
    after = scrape(server)

    def gained(name: str, labels: str = "") -> float:
        return sample(after, name, labels) - sample(before, name, labels)

    assert gained("veil_refusals_total", f'kind="rejected",reason="{rule}"') == LIMIT + 2
    for reason in reasons:
        assert gained("veil_refusals_total", f'kind="denied",reason="{reason}"') == 1
    # Past the limit once, and still past it: one spike, however many refusals follow.
    assert gained("veil_refusal_spikes_total") == 1
    assert "fintech" not in after  # who spiked goes to the log, never into a label


def test_ledger_gauges_match_the_log(server: Server) -> None:
    assert server.query(RELEASED).status_code == 200
    text = scrape(server)
    with server.client("supervisor") as client:
        size = client.get("/v1/ledger/checkpoint").json()["tree_size"]
    assert sample(text, "veil_ledger_entries") == size
    assert 0 <= sample(text, "veil_ledger_checkpoint_age_seconds") < 60
    deadline = time.monotonic() + 30
    while sample(text, "veil_ledger_verification_ok") != 1:
        assert time.monotonic() < deadline, "no passing verification was reported"
        time.sleep(0.5)
        text = scrape(server)
    assert time.time() - sample(text, "veil_ledger_verification_timestamp_seconds") < 30


def test_storage_and_policy_engine_are_reported(server: Server) -> None:
    text = scrape(server)
    usage = shutil.disk_usage(server.home / "assets")
    assert sample(text, "veil_asset_storage_capacity_bytes") == usage.total
    assert 0 < sample(text, "veil_asset_storage_free_bytes") <= usage.total
    assert sample(text, "veil_policy_engine_up") == 1


def test_workers_retired_by_a_change_of_assets_are_counted(server: Server) -> None:
    assert server.query(RELEASED).status_code == 200  # workers attached to today's assets
    before = scrape(server)
    assert register_households(server, 40).status_code == 201
    assert server.query(RELEASED).status_code == 200
    after = scrape(server)
    reason = 'reason="assets_changed"'
    name = "veil_enclave_worker_restarts_total"
    assert sample(after, name, reason) > sample(before, name, reason)


def test_every_series_follows_prometheus_naming_rules(server: Server) -> None:
    assert server.query(RELEASED).status_code == 200
    checked = subprocess.run(
        ["promtool", "check", "metrics"], input=scrape(server), capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_metric_the_rules_and_dashboard_use_is_exposed(server: Server) -> None:
    """The alert rules and the dashboard are checked against METRICS; this checks METRICS
    against a real scrape, so a renamed metric cannot silently blind an alert."""
    assert server.query(RELEASED).status_code == 200
    exposed = set(re.findall(r"^# TYPE (veil_\w+) \w+$", scrape(server), re.MULTILINE))
    assert exposed >= METRICS, sorted(METRICS - exposed)


def test_no_label_carries_an_identifier(server: Server) -> None:
    text = scrape(server)
    for secret in [*server.keys.values(), "analyst", "fintech", "hospital.visits", "q_"]:
        assert secret not in text

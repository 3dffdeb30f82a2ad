"""The rest of an asset's life in a real browser: a job held for review is released by its
provider, a supervisor suspends and resumes the developer, an operator destroys the asset
after confirming it, and the admin hands out, rotates and revokes keys shown once."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import Watch
from tests.console.test_lifecycle import _shot, _sign_in
from tests.support import Server

SUCCEEDED = {"en": "succeeded", "zh": "成功"}


# A held job keeps its developer's job slot until the latest it could end (a minute and
# more), so each language's walk has a developer of its own.
DEVELOPER = {"en": "analyst", "zh": "fintech"}


def _registry(server: Server, asset_id: str, developer: str) -> None:
    """An L4 asset (so jobs on it are held for review) with a grant the developer may run
    jobs under, approved by its provider and a supervisor."""
    card = {
        "id": asset_id, "title": "Residents", "provider": "city-hospital",
        "classification": "L4", "domain": "civil",
        "rights": {"holder": "city-hospital", "personal_data": True},
        "columns": [
            {"name": "resident", "type": "VARCHAR", "role": "privacy_unit"},
            {"name": "district", "type": "VARCHAR", "role": "dimension",
             "domain": ["north", "south"]},
        ],
        "revenue_shares_bp": {"city-hospital": 10000},
    }  # fmt: skip
    rows = "resident,district\n" + "".join(
        f"r{i},{'north' if i % 3 else 'south'}\n" for i in range(3000)
    )
    with server.client("city-hospital") as client:
        registered = client.post(
            "/v1/assets",
            data={"card": json.dumps(card)},
            files={"file": ("data.csv", io.BytesIO(rows.encode()), "text/csv")},
        )
        assert registered.status_code == 201, registered.text
    server.grant(developer, [asset_id], ["city-hospital", "supervisor"], methods=("sql", "job"))


def _wait_for_end(page: Page) -> None:
    """A running job's page reloads itself until the job ends."""
    expect(page.locator("#refresh")).to_have_count(0, timeout=90_000)


@pytest.mark.parametrize("language", ["en", "zh"])
def test_a_held_job_a_suspension_and_a_destruction(
    watch: Watch, server: Server, language: str
) -> None:
    page, asset_id, developer = watch.page, f"city.residents_{language}", DEVELOPER[language]
    _registry(server, asset_id, developer)

    # The developer submits a job on the L4 asset; it is held for review.
    _sign_in(page, server, developer, language)
    page.goto("/console/jobs/new")
    grant = page.locator("#grant_id option", has_text=asset_id).get_attribute("value")
    page.select_option("#grant_id", grant)
    page.fill("#code", f'answer = sql("SELECT district, COUNT(*) AS n FROM {asset_id} '
                       'GROUP BY district")\npublish("by_district", [["district", "label"], '
                       '["n", "count"]], answer["rows"])')  # fmt: skip
    page.click("#submit-job")
    job_url = page.url
    assert re.search(r"/console/jobs/j_[0-9a-f]{32}$", job_url)
    expect(page.locator("table.output")).to_have_count(0)  # nothing shown before review

    # The provider finds it in its review queue, and once the job has ended, reads the held
    # outputs and releases them.
    _sign_in(page, server, "city-hospital", language)
    page.goto("/console/jobs?review=1")
    page.click(f"a[href='{urlsplit(job_url).path}']")
    _wait_for_end(page)
    expect(page.locator("table.output")).to_have_count(1)
    _shot(page, "job-review", language)
    page.fill("#reason", "aggregates only")
    page.click("#decide")
    _sign_in(page, server, developer, language)
    page.goto(job_url)
    expect(page.locator("#job-status")).to_have_text(SUCCEEDED[language])
    expect(page.locator("table.output tbody tr")).to_have_count(2)

    # A supervisor suspends the developer: its next request is refused; resuming restores it.
    _sign_in(page, server, "supervisor", language)
    page.goto("/console/emergency")
    page.check("input[name=action][value=suspend]")
    page.select_option("#kind", "principal")
    page.fill("#target", developer)
    page.fill("#reason", "drill")
    page.click("#stop")
    expect(page.locator("#done")).to_contain_text(developer)
    key = {"Authorization": f"Bearer {server.keys[developer]}"}
    assert httpx.get(f"{server.url}/v1/budgets", headers=key).status_code == 403
    page.check("input[name=action][value=resume]")
    page.fill("#target", developer)
    page.fill("#reason", "drill over")
    page.click("#stop")
    expect(page.locator("#done")).to_contain_text(developer)
    assert httpx.get(f"{server.url}/v1/budgets", headers=key).status_code == 200

    # An operator destroys the asset; a wrong confirmation destroys nothing.
    _sign_in(page, server, "operator", language)
    page.goto(f"/console/assets/{asset_id}")
    page.click("#destroy-link")
    page.fill("#confirm", "not-the-id")
    page.fill("#reason", "retention over")
    page.click("#destroy")
    expect(page.locator(".refusal")).to_be_visible()
    page.fill("#confirm", asset_id)
    page.fill("#reason", "retention over")
    page.click("#destroy")
    expect(page.locator("h1")).to_contain_text(asset_id)
    expect(page.locator("dl.facts")).to_contain_text("crypto_shred")
    with server.client("supervisor") as client:
        assert client.get(f"/v1/assets/{asset_id}").json()["lifecycle"] == "destroyed"


def test_keys_are_shown_once_and_rotate_and_revoke(watch: Watch, server: Server) -> None:
    page = watch.page
    _sign_in(page, server, "admin", "en")
    page.goto("/console/principals")
    page.fill("#principal_id", "console-dev")
    page.fill("#org", "Console Org <b>bold</b>")
    page.click("#create")
    key = page.locator("#new-key").inner_text()
    assert key.startswith("veil_")
    assert httpx.get(f"{server.url}/v1/budgets",
                     headers={"Authorization": f"Bearer {key}"}).status_code == 200  # fmt: skip
    page.goto("/console/principals")
    expect(page.locator("#new-key")).to_have_count(0)  # shown once
    expect(page.locator("#principal-console-dev")).to_contain_text("Console Org <b>bold</b>")
    page.locator("#principal-console-dev .rotate").click()
    rotated = page.locator("#new-key").inner_text()
    assert rotated != key
    assert httpx.get(f"{server.url}/v1/budgets",
                     headers={"Authorization": f"Bearer {key}"}).status_code == 401  # fmt: skip
    page.locator("#principal-console-dev .revoke").click()
    expect(page.locator("#principal-console-dev")).to_contain_text("revoked")
    assert httpx.get(f"{server.url}/v1/budgets",
                     headers={"Authorization": f"Bearer {rotated}"}).status_code == 401  # fmt: skip


def test_a_developer_cannot_reach_oversight_pages(watch: Watch, server: Server) -> None:
    page = watch.page
    _sign_in(page, server, "analyst", "en")
    for path in ("/console/principals", "/console/assets/hospital.visits/destroy"):
        response = page.goto(path)
        assert response is not None and response.status == 403
        expect(page.locator(".refusal")).to_contain_text("POLICY_DENIED")


def test_overseers_watch_the_ledger_spikes_policy_budgets_and_money(
    watch: Watch, server: Server
) -> None:
    page = watch.page
    _sign_in(page, server, "supervisor", "en")
    page.goto("/console/oversight")
    expect(page.locator("#ledger-state")).to_contain_text(re.compile("verified|Not verified"))
    expect(page.locator("dl.facts")).to_contain_text("authz.rego")
    expect(page.locator("#budgets")).to_be_visible()
    page.goto("/console/settlements")
    expect(page.locator("#total")).to_be_visible()
    expect(page.locator("#by-month rect")).to_have_count(6)
    with page.expect_download() as download:
        page.click("a[download]")
    header = Path(download.value.path()).read_text().splitlines()[0]
    assert header == "ledger_index,at,reference,account,amount_minor,currency"
    # An operator reloads the policy modules; the reload is checked and recorded.
    _sign_in(page, server, "operator", "en")
    page.goto("/console/oversight")
    page.click("#reload-policy")
    expect(page.locator("#reloaded")).to_contain_text("ledger entry")
    page.click("#test-policy")  # the operator module's tests (tests.rego has none) under OPA
    expect(page.locator("#policy-tests.shown-once")).to_contain_text("0 failed")
    # A developer has no settlements or oversight to read.
    _sign_in(page, server, "analyst", "en")
    for path in ("/console/settlements", "/console/oversight"):
        response = page.goto(path)
        assert response is not None and response.status == 403

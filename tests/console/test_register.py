"""The registration procedure in a real browser, in both languages: the holder opens a
registration, files its documents and applies; the operator reviews and publishes; the
supervisor re-reviews and registers; the certificate prints with its standing."""

from __future__ import annotations

import io
import json

import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import Watch
from tests.console.test_lifecycle import _shot, _sign_in
from tests.support import Server

WORDS = {
    "en": {"nav": "Register", "draft": "draft", "applied": "applied",
           "registered": "registered", "valid": "valid"},
    "zh": {"nav": "登记", "draft": "备查", "applied": "已申请", "registered": "已登记",
           "valid": "有效"},
}  # fmt: skip


def _upload(server: Server, asset_id: str) -> None:
    card = {
        "id": asset_id, "title": "Library loans", "provider": "city-hospital",
        "classification": "L2", "domain": "civil",
        "rights": {"holder": "city-hospital", "personal_data": False},
        "columns": [{"name": "reader", "type": "VARCHAR", "role": "privacy_unit"},
                    {"name": "branch", "type": "VARCHAR", "role": "dimension"}],
        "revenue_shares_bp": {"city-hospital": 10000},
    }  # fmt: skip
    rows = "reader,branch\n" + "".join(f"r{i},b{i % 2}\n" for i in range(40))
    with server.client("city-hospital") as client:
        answer = client.post("/v1/assets", data={"card": json.dumps(card)},
                             files={"file": ("loans.csv", io.BytesIO(rows.encode()))})  # fmt: skip
    assert answer.status_code == 201, answer.text


def _step(page: Page, server: Server, who: str, language: str, url: str, step: str) -> None:
    _sign_in(page, server, who, language)
    page.goto(url)
    page.locator(f"form.step[data-step={step}] button").click()


@pytest.mark.parametrize("language", ["en", "zh"])
def test_an_asset_is_registered_step_by_step(watch: Watch, server: Server, language: str) -> None:
    page, words = watch.page, WORDS[language]
    asset_id = f"city.loans_{language}"
    _upload(server, asset_id)

    _sign_in(page, server, "city-hospital", language)
    page.goto("/console")
    page.click(f"nav >> text={words['nav']}")
    page.select_option("#asset", asset_id)
    page.locator("#open button").click()
    expect(page.locator("#state")).to_have_text(words["draft"])
    with server.client("city-hospital") as client:
        (opened,) = client.get("/v1/registrations", params={"asset": asset_id}).json()["items"]
    registration = opened["id"]
    url = f"/console/registrations/{registration}"

    for kind, content in (("legal_opinion", b"opinion"), ("valuation_report", b"valuation")):
        page.select_option("#document-kind", kind)
        page.set_input_files("#document", files=[{"name": f"{kind}.pdf",
                                                  "mimeType": "application/pdf",
                                                  "buffer": content}])  # fmt: skip
        page.locator("#attach button").click()
    expect(page.locator("#documents tbody tr")).to_have_count(2)
    page.locator("form.step[data-step=apply] button").click()
    expect(page.locator("#state")).to_have_text(words["applied"])

    # The holder is offered no review; the operator and the supervisor take theirs.
    expect(page.locator("form.step[data-step=review]")).to_have_count(0)
    _step(page, server, "operator", language, url, "review")
    _step(page, server, "supervisor", language, url, "re_review")
    _step(page, server, "operator", language, url, "publish")
    _step(page, server, "supervisor", language, url, "register")
    expect(page.locator("#state")).to_have_text(words["registered"])
    _shot(page, "registration", language)

    page.locator("#code").click()
    expect(page.locator("#standing")).to_contain_text(words["valid"])
    expect(page.locator("#note")).to_contain_text("veil-document/certificate")
    _shot(page, "certificate", language)

    with server.client("supervisor") as client:
        shown = client.get(f"/v1/registrations/{registration}").json()
    assert shown["state"] == "registered"
    steps = [h["step"] for h in shown["history"]]
    assert steps == ["open", "attach", "attach", "apply", "review", "re_review", "publish",
                     "register"]  # fmt: skip
    assert all(h.get("ledger_index") is not None for h in shown["history"][1:])

"""Price caps in a real browser, in both languages: a supervisor sets a cap and sees it in the
table, a bad rate is marked on its field, a developer reads the caps but may not change them,
and the supervisor removes the cap again; each step as the API sees it."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import Watch
from tests.console.test_lifecycle import _shot, _sign_in
from tests.support import Server

WORDS = {
    "en": {"heading": "Price caps", "per_query": "Per query", "uncapped": "not capped",
           "set": "Price cap set", "removed": "Price cap removed", "none": "No price caps are set.",
           "applies": "every L1 asset"},
    "zh": {"heading": "最高限价", "per_query": "每次查询", "uncapped": "不限",
           "set": "已设定最高限价", "removed": "已取消最高限价", "none": "尚未设定最高限价。",
           "applies": "insurance.claims"},
}  # fmt: skip
# What each language's walk caps: generous, so the demo's own prices stay within them.
TARGET = {"en": ("classification", "L1"), "zh": ("asset", "insurance.claims")}


def _caps(server: Server) -> dict[str, dict]:
    with server.client("fintech") as client:
        items = client.get("/v1/price-caps").json()["items"]
    return {cap.get("asset") or cap["classification"]: cap for cap in items}


def _set(page: Page, kind: str, target: str, per_query: str, reason: str) -> None:
    page.check(f"input[name=kind][value={kind}]")
    page.fill("#target", target)
    page.fill("#per_query_minor", per_query)
    page.fill("#reason", reason)
    page.click("#set-cap")


@pytest.mark.parametrize("language", ["en", "zh"])
def test_a_supervisor_sets_a_cap_everyone_reads_and_removes_it(
    watch: Watch, server: Server, language: str
) -> None:
    page, words = watch.page, WORDS[language]
    kind, target = TARGET[language]
    row = page.locator(f"#caps tr[data-target='{target}']")

    _sign_in(page, server, "supervisor", language)
    page.goto("/console")
    page.click(f"nav >> text={words['heading']}")
    expect(page.locator("h1")).to_have_text(words["heading"])

    # A rate that is not a whole number is marked on its field, and nothing is set.
    _set(page, kind, target, "cheap", "guided price")
    expect(page.locator(".refusal")).to_contain_text("BAD_REQUEST")
    expect(page.locator("#per_query_minor.wrong")).to_have_count(1)
    assert target not in _caps(server)

    _set(page, kind, target, "5000", "指导价 guided price")
    expect(page.locator("#done")).to_contain_text(words["set"])
    expect(page.locator("#done")).to_contain_text(target)
    expect(page.locator("#caps thead")).to_contain_text(words["per_query"])
    expect(row).to_contain_text(words["applies"])
    expect(row).to_contain_text("5,000")
    expect(row).to_contain_text(words["uncapped"])
    expect(row).to_contain_text("指导价 guided price")
    _shot(page, "price-caps", language)
    assert _caps(server)[target]["max"] == {"per_query_minor": 5000}

    # A developer reads the caps, with nothing offered to change them.
    _sign_in(page, server, "fintech", language)
    page.goto("/console/price-caps")
    expect(row).to_contain_text("5,000")
    expect(page.locator("#set-cap")).to_have_count(0)
    expect(page.locator("form[action='/console/price-caps/remove']")).to_have_count(0)

    _sign_in(page, server, "supervisor", language)
    page.goto("/console/price-caps")
    row.locator("button[type=submit]").click()
    expect(page.locator("#done")).to_contain_text(words["removed"])
    expect(row).to_have_count(0)
    assert target not in _caps(server)
    if not _caps(server):
        expect(page.locator("#caps tbody")).to_contain_text(words["none"])

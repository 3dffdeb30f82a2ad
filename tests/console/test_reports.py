"""The reports in a real browser, in both languages: a supervisor opens a holder's annual
supervision report and the month's revenue distribution, each with the figures the API gives,
downloads each as the API's CSV, and prints each from its printable page; a provider reads only
its own report, and a developer none."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import Watch
from tests.console.test_lifecycle import _shot, _sign_in
from tests.support import Server

WORDS = {
    "en": {"reports": "Reports", "supervision": "Annual supervision report",
           "distribution": "Revenue distribution", "total": "Total", "charged": "Total charged",
           "back": "Back to the report"},
    "zh": {"reports": "报告", "supervision": "年度监管报告", "distribution": "收益分配",
           "total": "合计", "charged": "总计费", "back": "返回报告"},
}  # fmt: skip
PAID = "SELECT plan, COUNT(*) AS claims FROM insurance.claims GROUP BY plan"
PERIOD = datetime.now(UTC).strftime("%Y-%m")


def _api(server: Server, who: str, path: str, **params: str) -> dict | str:
    with server.client(who) as client:
        response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.text if params.get("format") == "csv" else response.json()


def _csv_rows(text: str) -> list[dict[str, str]]:
    """CSV rows without the tree size, which moves on whenever anything is recorded."""
    return [{k: v for k, v in row.items() if k != "tree_size"}
            for row in csv.DictReader(io.StringIO(text, newline=""))]  # fmt: skip


def _download(page: Page) -> str:
    with page.expect_download() as download:
        page.click("#csv")
    return Path(download.value.path()).read_text(encoding="utf-8")


def _printable(page: Page, words: dict[str, str], heading: str, name: str, language: str) -> None:
    """The printable page: no header, forms or links on paper, and Chromium prints it."""
    page.click("#printable")
    expect(page.locator("h1")).to_contain_text(heading)
    expect(page.locator("header.bar")).to_have_count(0)
    expect(page.locator("link[href='/console/static/print.css']")).to_have_count(1)
    expect(page.locator("#back")).to_have_text(words["back"])
    page.emulate_media(media="print")
    expect(page.locator("#back")).to_be_hidden()
    expect(page.locator("table").first).to_be_visible()
    assert page.pdf(format="A4").startswith(b"%PDF")
    page.emulate_media(media="screen")
    _shot(page, f"report-{name}", language)
    page.click("#back")
    expect(page.locator("h1")).to_contain_text(heading)


@pytest.mark.parametrize("language", ["en", "zh"])
def test_a_supervisor_opens_downloads_and_prints_both_reports(
    watch: Watch, server: Server, language: str
) -> None:
    page, words = watch.page, WORDS[language]
    assert server.query(PAID, who="fintech").status_code == 200

    _sign_in(page, server, "supervisor", language)
    page.goto("/console")
    page.click(f"nav >> text={words['reports']}")
    expect(page.locator("h1")).to_have_text(words["reports"])

    # The insurer's year, as the API reports it.
    page.select_option("#holder", "insurer")
    page.click("#show-supervision")
    expect(page.locator("h1")).to_contain_text(words["supervision"])
    expect(page.locator("h1")).to_contain_text("insurer")
    report = _api(server, "supervisor", "/v1/reports/supervision", holder="insurer")
    (claims,) = report["assets"]
    row = page.locator("#grants tr[data-asset='insurance.claims']")
    expect(row.locator("td[data-key='requested']")).to_have_text(
        str(claims["grants"]["requested"]))  # fmt: skip
    expect(row.locator("td[data-key='in_force_at_end']")).to_have_text(
        str(claims["grants"]["in_force_at_end"]))  # fmt: skip
    released = page.locator("#queries tr[data-asset='total'] td[data-key='released']")
    expect(released).to_have_text(f"{report['totals']['queries']['released']:,}")
    expect(page.locator("#use tr[data-asset='total']")).to_contain_text(
        f"{report['totals']['revenue_minor']['CNY']:,} CNY")  # fmt: skip
    expect(page.locator("#grants tfoot")).to_contain_text(words["total"])
    api_csv = _api(server, "supervisor", "/v1/reports/supervision", holder="insurer", format="csv")
    assert _csv_rows(_download(page)) == _csv_rows(api_csv)
    _printable(page, words, words["supervision"], "supervision", language)

    # The month's distribution, as the API and the settlement give it.
    page.click(f"nav >> text={words['reports']}")
    page.fill("#period", PERIOD)
    page.click("#show-distribution")
    expect(page.locator("h1")).to_contain_text(words["distribution"])
    distribution = _api(server, "supervisor", "/v1/reports/distribution", period=PERIOD)
    settlement = _api(server, "supervisor", "/v1/settlements", period=PERIOD)
    assert distribution["totals"]["CNY"]["parties"] == settlement["parties"]
    expect(page.locator("#total-CNY")).to_have_text(f"{settlement['total_charged_minor']:,}")
    expect(page.locator("#totals")).to_contain_text(words["charged"])
    line = page.locator("#lines tr[data-asset='insurance.claims'][data-party='insurer']")
    (shown,) = [x for x in distribution["lines"]
                if (x["asset"], x["party"]) == ("insurance.claims", "insurer")]  # fmt: skip
    expect(line).to_contain_text(f"{shown['amount_minor']:,}")
    api_csv = _api(server, "supervisor", "/v1/reports/distribution", period=PERIOD, format="csv")
    assert _csv_rows(_download(page)) == _csv_rows(api_csv)
    _printable(page, words, words["distribution"], "distribution", language)


@pytest.mark.parametrize("language", ["en", "zh"])
def test_a_provider_reads_its_own_report_and_a_developer_none(
    watch: Watch, server: Server, language: str
) -> None:
    page, words = watch.page, WORDS[language]
    _sign_in(page, server, "insurer", language)
    page.click(f"nav >> text={words['reports']}")
    expect(page.locator("#holder")).to_have_value("insurer")
    expect(page.locator("#holder")).to_have_attribute("readonly", "")
    page.click("#show-supervision")
    expect(page.locator("#grants tbody tr")).to_have_count(1)
    expect(page.locator("#grants tr[data-asset='insurance.claims']")).to_have_count(1)

    # Another holder and one that does not exist: the same refusal, word for word.
    refusals = []
    for holder in ("city-hospital", "no-such-holder"):
        response = page.goto(f"/console/reports/supervision?holder={holder}")
        assert response is not None and response.status == 403
        expect(page.locator(".refusal")).to_contain_text("POLICY_DENIED")
        refusals.append(page.locator(".refusal").inner_text())
    assert refusals[0] == refusals[1]
    # A malformed parameter is marked on its field, naming nothing it was sent.
    response = page.goto("/console/reports/supervision?holder=%3Cscript%3E&year=1999")
    assert response is not None and response.status == 422
    expect(page.locator("#year.wrong")).to_have_count(1)
    assert "<script>" not in page.content()
    # Its distribution shows its own lines alone.
    page.goto(f"/console/reports/distribution?period={PERIOD}")
    parties = page.locator("#lines tbody tr").evaluate_all(
        "rows => rows.map(row => row.dataset.party).filter(Boolean)")  # fmt: skip
    assert set(parties) <= {"insurer"}

    _sign_in(page, server, "fintech", language)
    expect(page.locator("nav")).not_to_contain_text(words["reports"])
    response = page.goto("/console/reports")
    assert response is not None and response.status == 403
    expect(page.locator(".refusal")).to_contain_text("POLICY_DENIED")
    download = page.request.get("/console/reports/distribution/csv")
    assert download.status == 403 and download.text() == "POLICY_DENIED\n"

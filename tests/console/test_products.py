"""Data product descriptions in a real browser, in both languages: a developer files one on a
receipt picked from its usage (a form missing its sources is marked where it is wrong), the
provider of its source reads it, the provider of another asset does not see it, and its
developer withdraws it; each step as the API sees it."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import Watch
from tests.console.test_lifecycle import _shot, _sign_in
from tests.support import Server

# One question for every walk: under differential privacy, asking it again spends nothing.
QUESTION = (
    "SELECT district, COUNT(DISTINCT patient_id) AS patients FROM hospital.visits GROUP BY district"
)
WORDS = {
    "en": {"nav": "Products", "heading": "Data products", "file": "File a product", "filed": "filed",
           "withdrawn": "withdrawn", "not_a_source": "not a source"},
    "zh": {"nav": "数据产品", "heading": "数据产品", "file": "提交产品说明", "filed": "已提交",
           "withdrawn": "已撤回", "not_a_source": "不是来源"},
}  # fmt: skip


def _product(server: Server, who: str, product_id: str) -> tuple[int, dict]:
    with server.client(who) as client:
        read = client.get(f"/v1/products/{product_id}")
    return read.status_code, read.json()


def _fill(page: Page, name: str, receipt: int) -> None:
    page.fill("#name", name)
    page.fill("#description", "患者按区统计 <script>window.planted = 1</script>")
    page.fill("#scope", "Fuzhou districts, 2026")
    page.fill("#date", "2026-12-01")
    page.check(f"#receipt-{receipt}")


@pytest.mark.parametrize("language", ["en", "zh"])
def test_a_developer_files_a_product_its_provider_reads(
    watch: Watch, server: Server, language: str
) -> None:
    page, words = watch.page, WORDS[language]
    answered = server.query(QUESTION)
    assert answered.status_code == 200, answered.json()
    receipt = answered.json()["receipt"]["ledger_index"]
    name = f"District burden ({language})"

    _sign_in(page, server, "analyst", language)
    page.goto("/console")
    page.click(f"nav >> text={words['nav']}")
    expect(page.locator("h1")).to_have_text(words["heading"])
    page.click("#file-product")
    expect(page.locator("h1")).to_have_text(words["file"])
    sources = page.locator("select[id='source-hospital.visits']")
    expect(sources.locator("option").first).to_have_text(words["not_a_source"])

    # A receipt picked but no source: refused, the sources marked, nothing filed.
    _fill(page, name, receipt)
    page.click("#file")
    expect(page.locator(".refusal")).to_contain_text("INVALID_PRODUCT")
    expect(page.locator("#pick-sources.wrong")).to_have_count(1)
    expect(page.locator("#name")).to_have_value(name)
    expect(page.locator(f"#receipt-{receipt}")).to_be_checked()

    sources.select_option("hospital.visits@1")
    page.click("#file")
    expect(page.locator("#product-status")).to_have_text(words["filed"])
    expect(page.locator("h1")).to_contain_text(name)
    expect(page.locator("#receipts")).to_contain_text(f"#{receipt}")
    expect(page.locator("#product-description")).to_contain_text("<script>")
    assert page.evaluate("window.planted === undefined")
    product_id = page.url.rsplit("/", 1)[1]
    _shot(page, "product", language)
    status, shown = _product(server, "analyst", product_id)
    assert status == 200 and shown["receipts"][0]["ledger_index"] == receipt
    assert shown["sources"] == [{"asset": "hospital.visits", "version": 1}]

    # The provider of its source finds it in the list and reads it.
    _sign_in(page, server, "city-hospital", language)
    page.goto("/console")
    page.click(f"nav >> text={words['nav']}")
    row = page.locator(f"#products tr[data-product='{product_id}']")
    expect(row).to_contain_text(name)
    expect(row).to_contain_text(words["filed"])
    row.locator("a").click()
    expect(page.locator("#product-scope")).to_have_text("Fuzhou districts, 2026")
    expect(page.locator("#withdraw")).to_have_count(0)
    # The provider of another asset does not see it at all.
    _sign_in(page, server, "insurer", language)
    page.goto("/console/products")
    expect(page.locator(f"#products tr[data-product='{product_id}']")).to_have_count(0)
    assert _product(server, "insurer", product_id)[0] == 404

    # Its developer withdraws it.
    _sign_in(page, server, "analyst", language)
    page.goto(f"/console/products/{product_id}")
    page.fill("#reason", "superseded")
    page.click("#withdraw")
    expect(page.locator("#product-status")).to_have_text(words["withdrawn"])
    expect(page.locator("#withdrawn")).to_contain_text("superseded")
    assert _product(server, "city-hospital", product_id)[1]["status"] == "withdrawn"

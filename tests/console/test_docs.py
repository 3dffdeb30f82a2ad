"""/docs in a real browser: Swagger UI from Veil's own copy, and the bearer key it sends."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from tests.support import Server

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'"
)


def test_docs_page_loads_nothing_from_elsewhere(server: Server) -> None:
    response = httpx.get(f"{server.url}/docs")
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == CSP
    assert re.findall(r"https?://", response.text) == []
    scripts = re.findall(r"<script\b[^>]*>", response.text)
    assert scripts and all(" src=" in tag for tag in scripts)
    for asset in re.findall(r'(?:src|href)="(/[^"]+)"', response.text):
        assert httpx.get(f"{server.url}{asset}").status_code == 200, asset


def test_openapi_declares_the_bearer_key(server: Server) -> None:
    document = httpx.get(f"{server.url}/openapi.json").json()
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
    }
    assert document["security"] == [{"bearer": []}]
    assert document["paths"]["/healthz"]["get"]["security"] == []
    assert "security" not in document["paths"]["/v1/budgets"]["get"]


def test_swagger_ui_tries_a_route_with_the_analysts_key(page: Page, server: Server) -> None:
    page.goto("/docs")
    queries = page.locator(".opblock-post").filter(has=page.locator('[data-path="/v1/queries"]'))
    expect(queries).to_be_visible()

    page.locator(".auth-wrapper .authorize").click()
    page.locator("#auth-bearer-value").fill(server.keys["analyst"])
    page.locator(".auth-btn-wrapper .authorize").click()
    page.locator(".auth-btn-wrapper .btn-done").click()

    budgets = page.locator(".opblock-get").filter(has=page.locator('[data-path="/v1/budgets"]'))
    budgets.locator(".opblock-summary").click()
    budgets.locator(".try-out__btn").click()
    with page.expect_response(lambda sent: sent.url.startswith(f"{server.url}/v1/budgets")) as got:
        budgets.locator(".execute").click()
    assert got.value.status == 200
    assert got.value.request.headers["authorization"] == f"Bearer {server.keys['analyst']}"
    status = budgets.locator(".live-responses-table tr.response .response-col_status")
    expect(status).to_have_text("200")

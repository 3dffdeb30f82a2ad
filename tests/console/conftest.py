"""The console tests' real browser: Debian's chromium under Playwright, watched for anything amiss."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Error,
    Page,
    Request,
    Response,
    sync_playwright,
)

from tests.support import Server, start_server, stop_server

CHROMIUM = os.environ.get("VEIL_CHROMIUM", "/usr/bin/chromium")
# Root in a container has no user namespace for Chromium's sandbox, and a small /dev/shm.
ARGS = ["--no-sandbox", "--disable-dev-shm-usage"]
LOAD_FAILED = re.compile(r"Failed to load resource: the server responded with a status of (\d+) .*")


@dataclass
class Watch:
    """What a page did that a test forbids: console errors, uncaught errors, foreign requests."""

    page: Page
    origin: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)
    # Pages that answered a refusal with its 4xx status on purpose: (url, status).
    refusals: set[tuple[str, int]] = field(default_factory=set)

    def console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        # Chromium logs every 4xx document; a page showing a refusal is one by design.
        failed = LOAD_FAILED.fullmatch(message.text)
        if failed and (message.location.get("url"), int(failed[1])) in self.refusals:
            return
        self.console_errors.append(message.text)

    def response(self, response: Response) -> None:
        if response.request.resource_type == "document" and 400 <= response.status < 500:
            self.refusals.add((response.url, response.status))

    def error(self, error: Error) -> None:
        self.page_errors.append(str(error))

    def request(self, request: Request) -> None:
        url = urlsplit(request.url)
        # data: and blob: URLs are the page's own bytes, fetched from nowhere.
        if url.scheme not in ("data", "blob") and f"{url.scheme}://{url.netloc}" != self.origin:
            self.foreign_requests.append(request.url)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One demo server for every console test, answering as shipped (under differential privacy)."""
    # Registrations walked in the browser are published without a notice period to wait out.
    started = start_server(
        tmp_path_factory.mktemp("console") / "home",
        thresholds=False,
        env={"VEIL_NOTICE_PERIOD_S": "0"},
    )
    yield started
    stop_server(started)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Headless Debian chromium; a missing browser fails the tests (`make test` installs it)."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"no browser at {CHROMIUM}: run scripts/browser (or set VEIL_CHROMIUM)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def watch(browser: Browser, server: Server) -> Iterator[Watch]:
    """A fresh context and page on the server; after the test, nothing it recorded may remain."""
    context = browser.new_context(base_url=server.url)
    watched = Watch(context.new_page(), server.url)
    watched.page.on("console", watched.console)
    watched.page.on("pageerror", watched.error)
    context.on("request", watched.request)
    context.on("response", watched.response)
    yield watched
    context.close()
    assert watched.console_errors == []
    assert watched.page_errors == []
    assert watched.foreign_requests == []


@pytest.fixture
def page(watch: Watch) -> Page:
    return watch.page

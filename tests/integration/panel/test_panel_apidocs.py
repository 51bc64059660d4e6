"""The API documentation pages with no internet: `/docs` (Swagger UI) and `/redoc` (ReDoc) in
Chromium with every request to another host blocked. Swagger UI renders, "Try it out" creates
an API key as the user logged in through the panel's login page (the CSRF header sent by the
page's own script), and an API key entered under Authorize works too.

SQLite only: what is tested is the pages and the browser, not the database (every API route
they call runs on both databases in the other panel tests)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from stellarstack.panel.api.app import create_app
from stellarstack.panel.context import build_context
from support.browser import chromium
from support.panel import ADMIN_EMAIL, PASSWORD, Clock, Panel, panel_settings
from support.panel_node import served

# Swagger UI resolves and draws the whole document (about 90 operations) in the browser: seconds
# on an idle machine, much longer on a loaded one.
TIMEOUT_MS = 60_000
API_KEYS_OPERATION = "#operations-account-create_api_key_api_account_api_keys_post"
LIST_SERVERS_OPERATION = "#operations-servers-list_servers_api_servers_get"
# ReDoc draws a "by Redocly" badge whose image is on the vendor's site; the page's
# Content-Security-Policy blocks it (Chromium reports that as a console error) and ReDoc hides
# the image. The one thing on either page that names another host.
REDOC_BADGE = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@pytest.fixture
def docs_panel(tmp_path: Path) -> Iterator[Panel]:
    """A development panel (plain-HTTP cookies, as on loopback) with its admin set up."""
    settings = panel_settings(tmp_path, f"sqlite:///{tmp_path}/panel.db", environment="development")
    context = build_context(settings)
    clock = Clock()
    context.clock = clock
    running = Panel(context=context, app=create_app(context), clock=clock)
    running.setup_admin()
    yield running
    running.close()


@pytest.fixture
def site(docs_panel: Panel) -> Iterator[str]:
    with served(docs_panel) as url:
        yield url


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


class OfflineTab:
    """A page in a browser context of its own that can reach the panel and nothing else:
    every request to another host is aborted (and remembered), as on a machine without
    internet. Script errors and Content-Security-Policy violations are collected."""

    def __init__(self, browser: Any, site: str) -> None:
        self.site = site
        self.origin = "{0.scheme}://{0.netloc}".format(urlsplit(site))
        self.context = browser.new_context(viewport={"width": 1280, "height": 1000})
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.blocked: list[str] = []
        self.errors: list[str] = []
        self.page.route("**/*", self._route)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", self._console)

    def _route(self, route: Any) -> None:
        url = route.request.url
        if url.startswith(self.origin + "/"):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def _console(self, message: Any) -> None:
        # Answers the page expects (401 before logging in, the browser's own favicon.ico probe
        # on the login page) are logged as failed loads; anything else is a defect.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)

    def open(self, path: str) -> Any:
        return self.page.goto(self.site + path)

    def log_in(self, next_path: str) -> None:
        self.open(f"/login?next={next_path}")
        self.page.fill("#login-form [name=email]", ADMIN_EMAIL)
        self.page.fill("#login-form [name=password]", PASSWORD)
        self.page.click("#login-form button[type=submit]")
        self.page.wait_for_url(re.compile(re.escape(self.site + next_path) + "$"))

    def close(self) -> None:
        self.context.close()


def try_it_out(page: Any, operation_selector: str) -> tuple[Any, str]:
    """Opens an operation in Swagger UI and presses Try it out; the operation's element and
    the body Swagger UI pre-filled ('' without a body)."""
    operation = page.locator(operation_selector)
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    body = operation.locator("textarea.body-param__text")
    return operation, body.input_value() if body.count() else ""


def execute(operation: Any) -> tuple[str, str]:
    """Presses Execute; the response's status code and body as the page shows them."""
    operation.locator("button.execute").click()
    row = operation.locator(".live-responses-table tbody tr.response").first
    row.wait_for()
    status: str = row.locator(".response-col_status").inner_text().strip()
    body: str = row.locator(".response-col_description pre.microlight").first.inner_text()
    return status, body


def test_docs_pages_load_only_the_panels_own_files(docs_panel: Panel) -> None:
    client = docs_panel.client()
    for path, viewer in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        page = client.get(path)
        assert page.status_code == 200
        policy = page.headers["content-security-policy"]
        assert "script-src 'self';" in policy
        assert "default-src 'none'" in policy
        assert "<script>" not in page.text, "no inline script: the policy would refuse it"
        addresses = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert f"/docs/assets/{viewer}" in addresses
        for address in addresses:
            # Paths of this panel only: no scheme, no protocol-relative address.
            assert re.fullmatch(r"/[^/].*", address), address
            if address.startswith("/docs/assets/"):
                asset = client.get(address)
                assert asset.status_code == 200, address
                assert asset.content, address
                assert asset.headers["x-content-type-options"] == "nosniff"
    bundle = client.get("/docs/assets/swagger-ui-bundle.js")
    assert bundle.headers["content-type"].startswith("text/javascript")
    again = client.get(
        "/docs/assets/swagger-ui-bundle.js", headers={"If-None-Match": bundle.headers["etag"]}
    )
    assert again.status_code == 304
    assert again.content == b""
    for name in ("swagger-ui-bundle.js.map", "..%2F..%2Fpanel.db", "auth.js", "spa.py"):
        assert client.get(f"/docs/assets/{name}").status_code == 404, name


def test_swagger_ui_offline_creates_an_api_key_as_the_logged_in_user(
    browser: Any, site: str, docs_panel: Panel, tmp_path: Path
) -> None:
    tab = OfflineTab(browser, site)
    response = tab.open("/docs")
    assert "script-src 'self';" in response.headers["content-security-policy"]
    operations = tab.page.locator(".opblock")
    operations.first.wait_for()
    assert operations.count() > 50, "Swagger UI lists the panel's operations"
    assert "Console WebSocket" in tab.page.locator(".information-container").inner_text()

    # Before logging in, Try it out is refused: the page holds no credentials of its own.
    operation, body = try_it_out(tab.page, API_KEYS_OPERATION)
    assert execute(operation)[0] == "401"

    # Logged in through the panel's own login page in the same browser, Try it out runs as
    # that user: the session cookie goes by itself, the page's script adds the CSRF header.
    tab.log_in("/docs")
    operation, body = try_it_out(tab.page, API_KEYS_OPERATION)
    sent = json.loads(body)
    assert sent == {"name": "deploy bot", "scopes": ["servers:read"]}, "the example pre-filled"
    status, answer = execute(operation)
    assert status == "201", answer
    key = json.loads(answer)["key"]
    assert key.startswith("ssk_")
    keys = docs_panel.client(api_key=key).get("/api/servers")
    assert keys.status_code == 200, "the key made in the page works"
    # Kept with the test's files, to look at when this test fails.
    tab.page.screenshot(path=str(tmp_path / "docs.png"))
    assert tab.blocked == []
    assert tab.errors == []
    tab.close()

    # A fresh browser without the session: the key entered under Authorize is sent instead.
    keyed = OfflineTab(browser, site)
    keyed.open("/docs")
    keyed.page.locator("button.authorize").first.click()
    bearer = keyed.page.locator(".modal-ux .auth-container", has_text="HTTPBearer")
    bearer.locator("input").fill(key)
    bearer.locator("button.authorize").click()
    keyed.page.locator(".modal-ux button.close-modal").click()
    operation, _ = try_it_out(keyed.page, LIST_SERVERS_OPERATION)
    status, answer = execute(operation)
    assert status == "200", answer
    assert json.loads(answer)["total"] == 0
    assert keyed.blocked == []
    assert keyed.errors == []
    keyed.close()


def test_redoc_renders_offline(browser: Any, site: str) -> None:
    tab = OfflineTab(browser, site)
    response = tab.open("/redoc")
    assert "script-src 'self';" in response.headers["content-security-policy"]
    tab.page.get_by_role("heading", name="Console WebSocket").first.wait_for()
    tab.page.get_by_role(
        "heading", name="Create an API key; the response is the only time its secret is shown"
    ).wait_for()
    assert tab.page.locator("[role=menuitem]").count() > 20, "ReDoc lists the operations"
    assert tab.blocked == []
    assert [error for error in tab.errors if REDOC_BADGE not in error] == []
    tab.close()

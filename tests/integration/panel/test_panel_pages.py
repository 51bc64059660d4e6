"""The first-run, login, reset and verification pages in a real browser (Chromium driven by
Playwright) against the panel served on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stellarstack.panel.api.app import create_app
from stellarstack.panel.context import build_context
from stellarstack.panel.security import totp
from support.browser import chromium
from support.panel import ADMIN_EMAIL, PASSWORD, Clock, Panel, panel_settings
from support.panel_node import served

NEW_PASSWORD = "a freshly chosen passphrase"
TIMEOUT_MS = 15_000


@pytest.fixture
def dev_panel(tmp_path: Path, panel_db_url: str, panel_clock: Clock) -> Iterator[Panel]:
    """A development panel: plain-HTTP cookies, and reset mails written to the log."""
    context = build_context(panel_settings(tmp_path, panel_db_url, environment="development"))
    context.clock = panel_clock
    running = Panel(context=context, app=create_app(context), clock=panel_clock)
    yield running
    running.close()


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def site(dev_panel: Panel) -> Iterator[str]:
    with served(dev_panel) as url:
        yield url


class Tab:
    """One browser page that collects script errors (CSP violations show up there too)."""

    def __init__(self, browser: Any, base: str) -> None:
        self.base = base
        self.page = browser.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", self._console)

    def _console(self, message: Any) -> None:
        # HTTP errors the page handles (401, 422) are logged by the browser as failed loads;
        # anything else (a script error, a Content-Security-Policy violation) is a defect.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)

    def open(self, path: str) -> Any:
        return self.page.goto(self.base + path)

    def fill(self, form: str, **fields: str) -> None:
        for name, value in fields.items():
            self.page.fill(f"#{form} [name={name}]", value)

    def submit(self, form: str) -> None:
        self.page.click(f"#{form} button[type=submit]")

    def error_of(self, form: str) -> str:
        locator = self.page.locator(f"#{form} .error")
        locator.wait_for(state="visible")
        text: str = locator.inner_text()
        return text

    def wait_for_path(self, path: str) -> None:
        self.page.wait_for_url(re.compile(re.escape(self.base + path) + r"(\?.*)?$"))

    def who(self) -> str:
        """Who the web UI says is logged in (its account menu)."""
        name = self.page.get_by_test_id("account-name")
        name.wait_for()
        email = self.page.get_by_test_id("account-email").text_content()
        return f"Logged in as {name.inner_text()} <{email}>"

    def log_out(self) -> None:
        self.page.get_by_role("button", name=re.compile("^Account menu")).click()
        self.page.get_by_role("button", name="Log out").click()


def test_first_run_setup_page_creates_the_admin(browser: Any, site: str, dev_panel: Panel) -> None:
    tab = Tab(browser, site)
    # Before setup every page leads to the setup form.
    tab.open("/")
    tab.wait_for_path("/setup")
    response = tab.open("/setup")
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert response.headers["referrer-policy"] == "no-referrer"

    tab.fill("setup-form", name="<b>Ada</b>", email=ADMIN_EMAIL, password=PASSWORD)
    tab.fill("setup-form", password_again="something else entirely")
    tab.submit("setup-form")
    assert "differ" in tab.error_of("setup-form")
    tab.fill("setup-form", password="short", password_again="short")
    tab.submit("setup-form")
    assert "at least 10 characters" in tab.error_of("setup-form")

    tab.fill("setup-form", password=PASSWORD, password_again=PASSWORD)
    tab.submit("setup-form")
    tab.wait_for_path("/")
    # The name is shown as text, never as markup.
    assert tab.who() == f"Logged in as <b>Ada</b> <{ADMIN_EMAIL}>"
    assert tab.page.get_by_test_id("account-name").locator("b").count() == 0
    cookies = {c["name"]: c for c in tab.page.context.cookies()}
    assert cookies["stellarstack_session"]["httpOnly"] is True

    # Set up once: the page now sends people to the login form.
    tab.open("/setup")
    tab.wait_for_path("/login")
    tab.open("/")
    tab.who()
    tab.log_out()
    tab.wait_for_path("/login")
    tab.open("/")
    tab.wait_for_path("/login")
    assert tab.errors == []


def test_login_page_with_two_factor_code(browser: Any, site: str, dev_panel: Panel) -> None:
    admin = dev_panel.setup_admin()
    secret = admin.post("/api/account/two-factor/enrol", json={"password": PASSWORD}).json()[
        "secret"
    ]
    step = totp.step_of(dev_panel.clock().timestamp())
    enabled = admin.post(
        "/api/account/two-factor/enable", json={"code": totp.code_at(secret, step)}
    )
    assert enabled.status_code == 200
    recovery_codes = enabled.json()["recovery_codes"]
    dev_panel.clock.advance(seconds=totp.STEP_SECONDS)

    tab = Tab(browser, site)
    tab.open("/login")
    tab.fill("login-form", email=ADMIN_EMAIL, password="not the password")
    tab.submit("login-form")
    assert "wrong email or password" in tab.error_of("login-form")

    tab.fill("login-form", password=PASSWORD)
    tab.submit("login-form")
    tab.page.locator("#two-factor-form").wait_for(state="visible")
    # The code that enabled 2FA was used up: typed again, it is refused.
    tab.fill("two-factor-form", code=totp.code_at(secret, step))
    tab.submit("two-factor-form")
    assert "wrong" in tab.error_of("two-factor-form")
    tab.fill("two-factor-form", code=totp.code_at(secret, step + 1))
    tab.submit("two-factor-form")
    tab.wait_for_path("/")
    assert ADMIN_EMAIL in tab.who()

    # A second browser logs in with a recovery code instead.
    other = Tab(browser, site)
    other.open("/login?next=/")
    other.fill("login-form", email=ADMIN_EMAIL, password=PASSWORD)
    other.submit("login-form")
    other.page.locator("#two-factor-form").wait_for(state="visible")
    other.fill("two-factor-form", code=recovery_codes[0].upper())
    other.submit("two-factor-form")
    other.wait_for_path("/")
    assert ADMIN_EMAIL in other.who()
    assert admin.get("/api/account/two-factor").json()["recovery_codes_left"] == 9
    assert tab.errors == []
    assert other.errors == []


def test_forgotten_password_through_the_pages(
    browser: Any, site: str, dev_panel: Panel, caplog: pytest.LogCaptureFixture
) -> None:
    dev_panel.setup_admin()
    tab = Tab(browser, site)
    tab.open("/login")
    tab.fill("login-form", email=ADMIN_EMAIL)
    tab.page.click("#forgot-link")
    assert tab.page.input_value("#forgot-form [name=email]") == ADMIN_EMAIL
    with caplog.at_level(logging.INFO, logger="stellarstack.panel.mail"):
        tab.submit("forgot-form")
        tab.page.locator("#forgot-form .notice").wait_for(state="visible")
    logged = " ".join(r.getMessage() for r in caplog.records if r.name == "stellarstack.panel.mail")
    match = re.search(r"/reset-password\?token=([A-Za-z0-9_\-]+)", logged)
    assert match, logged
    token = match.group(1)

    reset = Tab(browser, site)
    response = reset.open(f"/reset-password?token={token}")
    assert response.headers["referrer-policy"] == "no-referrer"
    reset.fill("reset-form", password=NEW_PASSWORD, password_again=NEW_PASSWORD)
    reset.submit("reset-form")
    reset.page.locator("main > .notice").wait_for(state="visible")
    # The same link a second time: refused, with the reason on the page.
    again = Tab(browser, site)
    again.open(f"/reset-password?token={token}")
    again.fill("reset-form", password=NEW_PASSWORD, password_again=NEW_PASSWORD)
    again.submit("reset-form")
    assert "invalid, used or expired" in again.error_of("reset-form")

    login = Tab(browser, site)
    login.open("/login")
    login.fill("login-form", email=ADMIN_EMAIL, password=NEW_PASSWORD)
    login.submit("login-form")
    login.wait_for_path("/")
    assert ADMIN_EMAIL in login.who()
    assert reset.errors == []
    assert login.errors == []


def test_verification_link_page_confirms_the_address(
    browser: Any, site: str, dev_panel: Panel, caplog: pytest.LogCaptureFixture
) -> None:
    admin = dev_panel.setup_admin()
    with caplog.at_level(logging.INFO, logger="stellarstack.panel.mail"):
        assert admin.post("/api/account/email/verification").status_code == 202
    logged = " ".join(r.getMessage() for r in caplog.records if r.name == "stellarstack.panel.mail")
    match = re.search(r"/verify-email\?token=([A-Za-z0-9_\-]+)", logged)
    assert match, logged

    tab = Tab(browser, site)
    tab.open("/verify-email?token=not-a-real-token-at-all")
    tab.submit("verify-form")
    assert "invalid, used or expired" in tab.error_of("verify-form")
    tab.open(f"/verify-email?token={match.group(1)}")
    tab.submit("verify-form")
    tab.page.locator("main > .notice").wait_for(state="visible")
    assert admin.get("/api/account").json()["email_verified"] is True
    assert tab.errors == []

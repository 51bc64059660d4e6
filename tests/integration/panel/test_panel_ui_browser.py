"""The web UI in a real browser (Debian's Chromium driven by Playwright) against the panel
served on loopback, with a real node agent on the local Docker engine running the toy game:
first-run setup, the servers page watching a server reach Running, its overview, and its
console (backlog, a command and its echo, history, suspension closing it, a read-only
subuser without the command line). axe-core finds no serious accessibility problem on any
page. Screenshots of each page at desktop and phone width go to `screenshots/panel-ui/` for
review (ignored by git).

Runs on SQLite: what is tested is the UI; every route it uses is tested on both databases."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from stellarstack.panel.api.app import create_app
from stellarstack.panel.context import build_context
from stellarstack.panel.workers import default_background_tasks
from support.browser import chromium
from support.nodeproxy_process import NodeProxy
from support.panel import ADMIN_EMAIL, PASSWORD, Clock, Panel, panel_settings
from support.panel_node import served
from support.runtime_harness import TOY_BLUEPRINT, free_port
from support.webui import REPO, UI_DIR, built_ui

pytestmark = [pytest.mark.docker, pytest.mark.timeout(420)]

SCREENSHOTS = REPO / "screenshots" / "panel-ui"
AXE = UI_DIR / "node_modules" / "axe-core" / "axe.min.js"
TIMEOUT_MS = 20_000
VIEWPORTS = {"desktop": {"width": 1366, "height": 860}, "phone": {"width": 390, "height": 844}}
VIEWER_EMAIL = "viewer@example.com"
# xterm.js draws the theme's foreground (ConsoleTerminal.tsx) through a <style> element the
# Content-Security-Policy admits only with the page's nonce.
TERMINAL_FOREGROUND = "rgb(231, 234, 240)"
ANSI_RED = "rgb(255, 123, 114)"


@dataclass
class Site:
    url: str
    panel: Panel


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """The panel on a loopback port, its public URL that address (the console checks Origin)."""
    built_ui()
    port = free_port()
    settings = panel_settings(
        tmp_path,
        f"sqlite:///{tmp_path}/panel.db",
        environment="development",
        public_url=f"http://127.0.0.1:{port}",
    )
    context = build_context(settings)
    clock = Clock()
    context.clock = clock
    # With the background tasks `panel serve` runs: the servers list shows the states that the
    # status sync stores.
    app = create_app(context, background=default_background_tasks())
    panel = Panel(context=context, app=app, clock=clock)
    with served(panel, port) as url:
        yield Site(url, panel)
    while Api.opened:
        Api.opened.pop().close()
    panel.close()


class Api:
    """The panel's API as a logged-in browser session calls it (cookie and CSRF header)."""

    opened: list[httpx.Client] = []

    def __init__(self, base: str, email: str, password: str = PASSWORD) -> None:
        self.http = httpx.Client(base_url=base, timeout=30)
        Api.opened.append(self.http)
        answer = self.http.post("/api/auth/login", json={"email": email, "password": password})
        assert answer.status_code == 200, answer.text
        self.http.headers["X-CSRF-Token"] = answer.json()["csrf_token"]

    def call(self, method: str, path: str, expect: int, **kwargs: Any) -> Any:
        answer = self.http.request(method, path, **kwargs)
        assert answer.status_code == expect, f"{method} {path}: {answer.text}"
        return answer.json() if answer.content else None


class Tab:
    """One browser page that records script errors and Content-Security-Policy violations."""

    def __init__(self, browser: Any, base: str, viewport: str = "desktop", **options: Any) -> None:
        self.base = base
        self.context = browser.new_context(viewport=VIEWPORTS[viewport], **options)
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", self._console)

    def _console(self, message: Any) -> None:
        # Answers the page handles (401 before logging in, 404 of a missing server) are logged
        # by the browser as failed loads; anything else, CSP violations included, is a defect.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)

    def open(self, path: str) -> Any:
        return self.page.goto(self.base + path)

    def wait_for_path(self, path: str) -> None:
        self.page.wait_for_url(re.compile(re.escape(self.base + path) + r"(\?.*)?$"))

    def log_in(self, email: str, password: str = PASSWORD) -> None:
        self.page.fill("#login-form [name=email]", email)
        self.page.fill("#login-form [name=password]", password)
        self.page.click("#login-form button[type=submit]")

    def terminal_text(self) -> str:
        text: str = self.page.locator(".xterm-rows").inner_text()
        return text

    def wait_for_terminal(self, needle: str, within_ms: int = TIMEOUT_MS) -> None:
        self.page.wait_for_function(
            "needle => document.querySelector('.xterm-rows')?.innerText.includes(needle)",
            arg=needle,
            timeout=within_ms,
        )

    def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()


def serious_violations(tab: Tab) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now."""
    tab.page.add_script_tag(path=str(AXE))
    result = tab.page.evaluate("() => axe.run(document, { resultTypes: ['violations'] })")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def register_node(admin: Api, node: NodeProxy) -> str:
    created = admin.call(
        "POST",
        "/api/admin/nodes",
        201,
        json={
            "name": node.agent_id,
            "url": node.url,
            "token": node.token,
            "agent_id": node.agent_id,
            "public_address": "127.0.0.1",
        },
    )
    admin.call(
        "POST",
        f"/api/admin/nodes/{created['id']}/allocations",
        201,
        json={"ip": "127.0.0.1", "ports": [str(free_port())]},
    )
    admin.call("POST", "/api/admin/blueprints", 201, json=copy.deepcopy(TOY_BLUEPRINT))
    node_id: str = created["id"]
    return node_id


def create_toy_server(admin: Api, node_id: str) -> dict[str, Any]:
    server: dict[str, Any] = admin.call(
        "POST",
        "/api/servers",
        201,
        json={
            "name": "Toy world",
            "description": "The toy game, for the browser tests",
            "blueprint": "toy",
            "node_id": node_id,
            "variables": {"TOY_NAME": "browser"},
            "resources": {"cpu": "500m", "memory": "128Mi", "disk": "1Gi", "pids": 64},
            "ports": [
                {"name": "status", "port": 7777, "protocol": "TCP"},
                {"name": "query", "port": 7778, "protocol": "UDP"},
            ],
        },
    )
    return server


def invite_viewer(admin: Api, base: str, server_id: str) -> None:
    """A user holding only console.read on the server, invited and accepting through the API."""
    admin.call(
        "POST",
        "/api/admin/users",
        201,
        json={"email": VIEWER_EMAIL, "name": "Viewer", "password": PASSWORD},
    )
    invitation = admin.call(
        "POST",
        f"/api/servers/{server_id}/users/invitations",
        201,
        json={"email": VIEWER_EMAIL, "permissions": ["console.read"]},
    )
    token = invitation["accept_url"].rstrip("/").rsplit("/", 1)[-1]
    Api(base, VIEWER_EMAIL).call("POST", f"/api/invitations/{token}/accept", 200)


def test_setup_servers_overview_and_console_in_the_browser(
    site: Site, nodeproxy: NodeProxy
) -> None:
    with chromium() as browser:
        tab = Tab(browser, site.url)
        # First run: the app sends everyone to the setup page, which comes back to the app.
        tab.open("/server/nothing/console")
        tab.wait_for_path("/setup")
        tab.page.fill("#setup-form [name=name]", "Ada Admin")
        tab.page.fill("#setup-form [name=email]", ADMIN_EMAIL)
        tab.page.fill("#setup-form [name=password]", PASSWORD)
        tab.page.fill("#setup-form [name=password_again]", PASSWORD)
        tab.page.click("#setup-form button[type=submit]")
        tab.wait_for_path("/")
        tab.page.get_by_text("You have no servers yet").wait_for()
        assert tab.page.get_by_test_id("account-name").inner_text() == "Ada Admin"

        admin = Api(site.url, ADMIN_EMAIL)
        server = create_toy_server(admin, register_node(admin, nodeproxy))
        address = f"127.0.0.1:{server['allocations'][0]['port']}"

        # The servers page shows it, its address, and its state until it runs.
        tab.open("/")
        card = tab.page.locator("article", has_text="Toy world")
        card.wait_for()
        assert address in card.inner_text()
        card.locator('[data-state="Running"]').wait_for(timeout=90_000)
        tab.page.get_by_role("searchbox").fill("no such name")
        tab.page.get_by_text("No server matches these filters").wait_for()
        assert "q=no+such+name" in tab.page.url
        tab.page.get_by_role("button", name="Clear the filters").click()
        card.wait_for()

        # The overview: where to connect, the state with its reason, live usage, the blueprint.
        card.get_by_role("link", name="Toy world").click()
        tab.wait_for_path(f"/server/{server['id']}")
        connect = tab.page.locator("section", has_text="Connect")
        assert address in connect.inner_text()
        assert connect.get_by_role("button", name=f"Copy {address}").count() >= 1
        state = tab.page.locator("section", has_text="State")
        assert "Ready" in state.inner_text()
        usage = tab.page.locator("section", has_text="Live usage")
        usage.get_by_text("of 128 MiB").wait_for()
        blueprint = tab.page.locator("section", has_text="Blueprint")
        assert "TOY_NAME" in blueprint.inner_text()
        assert "browser" in blueprint.inner_text()

        # The console: the backlog, a command echoed, the command history.
        tab.page.get_by_role("navigation", name="Server pages").get_by_role(
            "link", name="Console"
        ).click()
        tab.wait_for_path(f"/server/{server['id']}/console")
        tab.page.locator('[data-phase="open"]').wait_for()
        tab.wait_for_terminal("ready name=browser")
        command = tab.page.get_by_label("Console command")
        command.fill("say hello")
        command.press("Enter")
        tab.wait_for_terminal("[say] hello")
        assert command.input_value() == ""
        command.press("ArrowUp")
        assert command.input_value() == "say hello"
        command.press("ArrowDown")
        assert command.input_value() == ""
        # ANSI colours, in the palette of the terminal's theme.
        command.fill("say \x1b[31mred alert\x1b[0m over")
        command.press("Enter")
        tab.wait_for_terminal("red alert over")
        red = tab.page.locator(".xterm-rows .xterm-fg-1", has_text="red alert")
        assert red.evaluate("element => getComputedStyle(element).color") == ANSI_RED
        # The terminal's theme reached the page through the nonce'd <style> element.
        assert (
            tab.page.locator(".xterm-rows").evaluate("element => getComputedStyle(element).color")
            == TERMINAL_FOREGROUND
        )

        # A deep link opened afresh (a reload) lands on the same page.
        tab.page.reload()
        tab.wait_for_terminal("[say] hello")
        assert tab.terminal_text().count("[say] hello") == 1

        assert tab.errors == []
        tab.close()

        # A subuser who may only watch: no command line, no power buttons, and the console.
        invite_viewer(admin, site.url, server["id"])
        viewer = Tab(browser, site.url)
        viewer.open(f"/server/{server['id']}/console")
        viewer.wait_for_path("/login")
        viewer.log_in(VIEWER_EMAIL)
        viewer.wait_for_path(f"/server/{server['id']}/console")
        viewer.wait_for_terminal("[say] hello", within_ms=60_000)
        viewer.page.get_by_text("You can watch this console").wait_for()
        assert viewer.page.get_by_label("Console command").count() == 0
        assert (
            viewer.page.get_by_role("button", name=re.compile("^(Start|Stop|Restart)")).count() == 0
        )
        viewer.page.get_by_role("link", name="Overview").click()
        viewer.page.locator("section", has_text="Live usage").get_by_text("of 128 MiB").wait_for()
        viewer.page.get_by_role("link", name="Console").click()
        viewer.page.locator('[data-phase="open"]').wait_for()

        # Suspending the server closes its console for good (admins excepted), and the page
        # says why.
        admin.call("POST", f"/api/admin/servers/{server['id']}/suspend", 200)
        viewer.page.locator('[data-phase="closed"]').wait_for(timeout=30_000)
        assert "suspended" in viewer.page.locator("section[aria-label=Console]").inner_text()
        assert viewer.errors == []
        viewer.close()


def test_every_page_is_accessible_and_screenshotted(site: Site, nodeproxy: NodeProxy) -> None:
    with chromium() as browser:
        made = httpx.post(
            f"{site.url}/api/auth/setup",
            json={"email": ADMIN_EMAIL, "name": "Ada Admin", "password": PASSWORD},
            timeout=30,
        )
        assert made.status_code == 201, made.text
        admin = Api(site.url, ADMIN_EMAIL)
        server = create_toy_server(admin, register_node(admin, nodeproxy))
        pages = {
            "servers": ("/", "article [data-state='Running']"),
            "overview": (f"/server/{server['id']}", "text=of 128 MiB"),
            "console": (f"/server/{server['id']}/console", "[data-phase='open']"),
            "not-found": ("/server/nothing", "text=No such server"),
        }
        findings: list[str] = []
        for viewport in VIEWPORTS:
            # axe-core is injected as a script of its own, which the policy would refuse.
            tab = Tab(browser, site.url, viewport, bypass_csp=True)
            tab.open("/login")
            tab.log_in(ADMIN_EMAIL)
            tab.wait_for_path("/")
            for name, (path, ready) in pages.items():
                tab.open(path)
                tab.page.locator(ready).first.wait_for(timeout=90_000)
                if name == "console":
                    tab.wait_for_terminal("ready name=browser")
                tab.screenshot(f"{viewport}-{name}")
                findings += [f"{viewport} {name}: {v}" for v in serious_violations(tab)]
            tab.page.get_by_role("button", name=re.compile("^Account menu")).click()
            tab.screenshot(f"{viewport}-account-menu")
            findings += [f"{viewport} account menu: {v}" for v in serious_violations(tab)]
            assert tab.errors == [], tab.errors
            tab.close()
        assert findings == [], "\n".join(findings)
        shots = {p.name for p in SCREENSHOTS.glob("*.png")}
        assert {f"{v}-{n}.png" for v in VIEWPORTS for n in pages} <= shots

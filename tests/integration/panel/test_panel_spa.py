"""The web UI as the panel serves it (`stellarstack.panel.web.spa`): the app's page at every
address it routes, with a strict Content-Security-Policy and a fresh nonce; its built files
with long cache lifetimes; the API and the pre-login pages untouched. And the one route the UI
added to the API: what the caller may do on a server."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from stellarstack.panel import permissions
from stellarstack.panel.api.app import create_app
from stellarstack.panel.context import build_context
from stellarstack.panel.db.engine import transaction
from stellarstack.panel.db.models import Server, Subuser, TargetKind
from stellarstack.panel.web import spa
from support.panel import Clock, Panel, PanelClient, create_user, panel_settings
from support.webui import built_ui

APP_ADDRESSES = ["/", "/servers", "/server/abc", "/server/abc/console", "/account/keys", "/admin"]
NONCE = re.compile(r'<meta property="csp-nonce" nonce="([A-Za-z0-9_-]{16,})">')


@pytest.fixture
def sqlite_panel(tmp_path: Path) -> Iterator[Panel]:
    context = build_context(panel_settings(tmp_path, f"sqlite:///{tmp_path}/panel.db"))
    clock = Clock()
    context.clock = clock
    running = Panel(context=context, app=create_app(context), clock=clock)
    yield running
    running.close()


def test_every_app_address_leads_to_setup_before_the_first_admin(sqlite_panel: Panel) -> None:
    client = sqlite_panel.client()
    for address in APP_ADDRESSES:
        answer = client.get(address, follow_redirects=False)
        assert answer.status_code == 303, address
        assert answer.headers["location"] == "/setup"


def test_every_app_address_serves_the_app_with_a_strict_policy(sqlite_panel: Panel) -> None:
    built_ui()
    client = sqlite_panel.setup_admin()
    nonces = set()
    for address in APP_ADDRESSES:
        answer = client.get(address)
        assert answer.status_code == 200, address
        assert answer.headers["content-type"].startswith("text/html")
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["x-frame-options"] == "DENY"
        policy = answer.headers["content-security-policy"]
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        assert directives["default-src"] == "'none'"
        assert directives["script-src"] == "'self'"
        assert "unsafe" not in directives["style-src-elem"]
        assert directives["connect-src"] == "'self'"
        match = NONCE.search(answer.text)
        assert match, answer.text
        assert f"'nonce-{match.group(1)}'" in directives["style-src-elem"]
        assert spa.NONCE_PLACEHOLDER not in answer.text
        assert '<div id="root">' in answer.text
        nonces.add(match.group(1))
    assert len(nonces) == len(APP_ADDRESSES), "every response has its own nonce"


def test_built_files_are_served_for_a_year_and_compressed(sqlite_panel: Panel) -> None:
    build = built_ui()
    client = sqlite_panel.client()
    page = (build / "index.html").read_text()
    referenced = re.findall(r'(?:src|href)="(/assets/[^"]+)"', page)
    assert any(name.endswith(".js") for name in referenced), page
    for address in referenced:
        on_disk = (build / address.lstrip("/")).read_bytes()
        plain = client.get(address, headers={"Accept-Encoding": "identity"})
        assert plain.status_code == 200, address
        assert plain.content == on_disk
        assert plain.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert plain.headers["x-content-type-options"] == "nosniff"
        if address.endswith(".js"):
            assert plain.headers["content-type"].startswith("text/javascript")
            zipped = client.get(address, headers={"Accept-Encoding": "gzip"})
            assert zipped.headers["content-encoding"] == "gzip"
            assert int(zipped.headers["content-length"]) < len(on_disk) / 2
            assert zipped.content == on_disk  # as the client decoded it


@pytest.mark.parametrize(
    "address", ["/assets/missing.js", "/assets/..%2Fspa.py", "/assets/index.html", "/assets/.x.js"]
)
def test_only_built_files_are_served_as_assets(sqlite_panel: Panel, address: str) -> None:
    built_ui()
    answer = sqlite_panel.client().get(address)
    assert answer.status_code == 404, answer.text[:200]


def test_the_api_and_the_pre_login_pages_keep_their_answers(sqlite_panel: Panel) -> None:
    built_ui()
    client = sqlite_panel.setup_admin()
    missing = client.get("/api/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/json")
    assert client.get("/api/auth/login").status_code == 405
    assert client.get("/login", follow_redirects=False).status_code == 200
    assert "login-form" in client.get("/login").text
    assert client.get("/reset-password").status_code == 200
    assert client.get("/openapi.json").json()["info"]["title"]
    assert client.get("/not-an-app-section").status_code == 404


def test_a_panel_without_the_built_ui_says_how_to_build_it(
    sqlite_panel: Panel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spa, "build_dir", lambda: tmp_path / "not-built")
    client = sqlite_panel.setup_admin()
    answer = client.get("/server/abc")
    assert answer.status_code == 503
    assert "make ui" in answer.text
    assert client.get("/assets/index.js").status_code == 404


# --- GET /api/servers/{id}/permissions ----------------------------------------------------


def _server(panel: Panel, owner_id: str) -> str:
    with transaction(panel.context.sessions) as db:
        server = Server(
            name="perm",
            owner_id=owner_id,
            target_kind=TargetKind.DOCKER,
            namespace="default",
            resource_name="perm",
            blueprint="toy",
        )
        db.add(server)
        db.flush()
        return server.id


def _grant(panel: Panel, server_id: str, user_id: str, nodes: list[str]) -> None:
    with transaction(panel.context.sessions) as db:
        db.add(Subuser(server_id=server_id, user_id=user_id, permissions=nodes))


def _nodes(client: PanelClient, server_id: str) -> tuple[int, object]:
    answer = client.get(f"/api/servers/{server_id}/permissions")
    return answer.status_code, answer.json()


def test_permissions_say_what_each_caller_may_do(panel: Panel) -> None:
    admin = panel.setup_admin()
    owner_id = create_user(panel, admin, "owner@example.com")
    viewer_id = create_user(panel, admin, "viewer@example.com")
    create_user(panel, admin, "stranger@example.com")
    server_id = _server(panel, owner_id)
    _grant(panel, server_id, viewer_id, ["console.read", "files.*"])
    in_order = [node for nodes in permissions.PERMISSION_NODES.values() for node in nodes]

    owner = panel.login("owner@example.com")
    assert _nodes(owner, server_id) == (200, {"permissions": in_order, "owner": True})
    assert _nodes(admin, server_id) == (200, {"permissions": in_order, "owner": True})

    files = [node for node in in_order if node.startswith("files.")]
    viewer = panel.login("viewer@example.com")
    assert _nodes(viewer, server_id) == (
        200,
        {"permissions": ["console.read", *files], "owner": False},
    )

    # An API key narrows what its user may do to its scopes.
    key = panel.client(api_key=owner.create_api_key(["servers:read", "console:read"]))
    status, body = _nodes(key, server_id)
    assert status == 200
    assert isinstance(body, dict)
    assert "console.read" in body["permissions"]
    assert "console.write" not in body["permissions"]
    assert "settings.read" in body["permissions"]
    no_servers_scope = panel.client(api_key=owner.create_api_key(["console:read"]))
    assert _nodes(no_servers_scope, server_id)[0] == 403

    # Someone who cannot see the server learns nothing, as for an unknown id.
    stranger = panel.login("stranger@example.com")
    hidden = _nodes(stranger, server_id)
    assert hidden[0] == 404
    assert hidden == _nodes(stranger, "no-such-server")
